import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

let engine: FanoutEngine;
let app: ReturnType<typeof createFanoutServer>;
const auth = { authorization: 'Bearer fk-acme' };

beforeAll(async () => {
  engine = createEngine({
    cache: false,
    providers: [new MockProvider({ models: { m: { latency: 0, outputTokens: 2 } } })],
  });
  app = createFanoutServer({
    engine,
    keys: new ApiKeys([{ tenant: 'acme', key: 'fk-acme' }]),
    metricsKeys: new ApiKeys([{ tenant: 'operator', key: 'fk-op' }]),
    bodyLimitBytes: 4 * 1024 * 1024,
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await engine.close();
});

async function runToEnd(payload: unknown): Promise<Record<string, any>> {
  const started = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth, payload: payload as object });
  if (started.statusCode !== 202) return { status: started.statusCode, ...started.json() };
  const { id } = started.json();
  for (;;) {
    const view = (await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth })).json();
    if (view.state !== 'running') return view;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('no request makes the server do unbounded work', () => {
  it('a split boundary is literal text, never a regular expression compiled from the request', async () => {
    // `^(a+)+$` as a pattern backtracks for seconds on a line of a's; as a literal prefix it matches nothing.
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: auth,
      payload: {
        pipeline: { inputs: ['t'], steps: { s: { split: { from: 't', maxTokens: 50, boundary: '^(a+)+$' } } } },
        inputs: { t: 'a'.repeat(40) },
      },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toMatch(
      /steps\.s\.split\.boundary: expected the literal text that starts a block/,
    );
    const block = (name: string) =>
      `diff --git ${name}\n${Array.from({ length: 30 }, (_, i) => `+ line ${i} of ${name}\n`).join('')}`;
    const text = block('a') + block('b') + block('c');
    const view = await runToEnd({
      pipeline: { inputs: ['t'], steps: { s: { split: { from: 't', maxTokens: 400, boundary: 'diff --git' } } } },
      inputs: { t: text },
    });
    const chunks: string[] = view.steps.s.output;
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((chunk) => chunk.startsWith('diff --git'))).toBe(true);
    expect(chunks.join('')).toBe(text);
  });

  it('a template that would render past 1,000,000 characters fails its step, naming it, before the text is built', async () => {
    const big = 'x'.repeat(500_000);
    const before = process.memoryUsage().heapUsed;
    const view = await runToEnd({
      pipeline: {
        inputs: ['doc'],
        steps: {
          each: {
            forEach: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'],
            model: 'mock:m',
            prompt: '{{ inputs.doc }}'.repeat(400),
          },
        },
      },
      inputs: { doc: big },
    });
    expect(view.state).toBe('failed');
    expect(view.steps.each.error).toEqual({
      code: 'invalid_request',
      message: 'steps.each.prompt: the rendered template is over 1,000,000 characters',
    });
    // 10 prompts of 200 MB each were never made.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(100 * 1024 * 1024);
  });

  it('a forEach over more than 10,000 items fails its step, naming the count', async () => {
    const items = Array.from({ length: 10_001 }, (_, i) => String(i));
    const view = await runToEnd({
      pipeline: { steps: { each: { forEach: items, model: 'mock:m', prompt: '{{ item }}' } } },
    });
    expect(view.steps.each.error.message).toBe(
      'steps.each.forEach: 10,001 items; a step may fan out over at most 10,000',
    );
  });

  it('a run answers with the first 100 items of a list output and 1,000 calls; the rest are paged, and so are batch results', async () => {
    const items = Array.from({ length: 1_200 }, (_, i) => `item ${i}`);
    const view = await runToEnd({
      pipeline: { steps: { each: { forEach: items, model: 'mock:m', prompt: '{{ item }}' } } },
    });
    expect(view.state).toBe('completed');
    expect([
      view.steps.each.output.length,
      view.steps.each.outputItems,
      view.timeline.length,
      view.timelineCalls,
    ]).toEqual([100, 1200, 1000, 1200]);
    const page = (
      await app.inject({
        method: 'GET',
        url: `/v1/runs/${view.id}/steps/each/items?offset=1100&limit=1000`,
        headers: auth,
      })
    ).json();
    expect([page.total, page.offset, page.items.length]).toEqual([1200, 1100, 100]);
    const calls = (
      await app.inject({ method: 'GET', url: `/v1/runs/${view.id}/calls?offset=1000&limit=500`, headers: auth })
    ).json();
    expect([calls.total, calls.calls.length, calls.calls[0].item]).toEqual([1200, 200, expect.any(Number)]);
    const bad = await app.inject({ method: 'GET', url: `/v1/runs/${view.id}/calls?limit=5000`, headers: auth });
    expect([bad.statusCode, bad.json().error.message]).toEqual([
      400,
      'limit: expected a whole number from 1 to 1000, got "5000"',
    ]);
    const batch = (
      await app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { ...auth, 'content-type': 'application/x-ndjson' },
        payload: items.map((item) => JSON.stringify({ id: item, model: 'mock:m', prompt: item })).join('\n'),
      })
    ).json();
    const lines = (
      await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/results?offset=1195&limit=10`, headers: auth })
    ).body
      .trim()
      .split('\n');
    expect(lines.map((line) => JSON.parse(line).custom_id)).toEqual([
      'item 1195',
      'item 1196',
      'item 1197',
      'item 1198',
      'item 1199',
    ]);
    const foreign = await app.inject({ method: 'GET', url: `/v1/runs/${view.id}/steps/nope/items`, headers: auth });
    expect(foreign.statusCode).toBe(404);
  });

  it('metric labels stay within 100 models however many a batch invents', async () => {
    const lines = Array.from({ length: 2_000 }, (_, i) =>
      JSON.stringify({ model: `mock:invented-${i}`, prompt: 'x' }),
    ).join('\n');
    const batch = (
      await app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { ...auth, 'content-type': 'application/x-ndjson' },
        payload: lines,
      })
    ).json();
    await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/results`, headers: auth });
    const text = (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer fk-op' } }))
      .body;
    const models = new Set([...text.matchAll(/^fanout_tasks_total\{model="([^"]+)"/gm)].map((m) => m[1]));
    const keys = new Set([...text.matchAll(/^fanout_limiter_fill_ratio\{key="([^"]+)"/gm)].map((m) => m[1]));
    expect(models.size).toBeLessThanOrEqual(101);
    expect(models.has('(other)')).toBe(true);
    expect(keys.size).toBeLessThanOrEqual(100);
    expect(text.length).toBeLessThan(1_000_000);
  });
});
