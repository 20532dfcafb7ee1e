import OpenAI from 'openai';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

let engine: FanoutEngine;
let app: ReturnType<typeof createFanoutServer>;
let baseURL: string;

const keys = new ApiKeys([
  { tenant: 'acme', key: 'fk-acme-secret' },
  { tenant: 'globex', key: 'fk-globex-secret' },
]);
const metricsKeys = new ApiKeys([{ tenant: 'operator', key: 'fk-operator' }]);
const as = (key: string) => ({ authorization: `Bearer ${key}` });

/** acme's run `id` as GET /v1/runs/:id shows it once it is no longer running (or after a second of asking). */
async function runEnded(id: string, first: { state: string }): Promise<any> {
  let view: any = first;
  for (let i = 0; i < 100 && view.state === 'running'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    view = (await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: as('fk-acme-secret') })).json();
  }
  return view;
}

beforeAll(async () => {
  engine = createEngine({
    cache: false,
    providers: [
      new MockProvider({
        models: {
          slow: { latency: 200 },
          talk: { timeToFirstTokenMs: 5, interTokenMs: 2, outputTokens: 6 },
          drip: { timeToFirstTokenMs: 150, interTokenMs: 20, outputTokens: 5 },
        },
      }),
    ],
  });
  app = createFanoutServer({
    engine,
    keys,
    metricsKeys,
    models: ['mock:talk', 'mock:slow'],
    bodyLimitBytes: 64 * 1024,
    tools: { lookup: async (args: Record<string, string>) => `found ${args.q}` },
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  baseURL = `${address}/v1`;
});
afterAll(async () => {
  await app.close();
  await engine.close();
});

describe('task API', () => {
  it('takes a task, answers 202 with its id at once, and reports it as it runs and ends', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: as('fk-acme-secret'),
      payload: { model: 'mock:slow', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(created.statusCode).toBe(202);
    const { id, state } = created.json();
    expect(['queued', 'processing']).toContain(state);
    const waited = await app.inject({
      method: 'POST',
      url: '/v1/tasks?wait=1',
      headers: as('fk-acme-secret'),
      payload: { model: 'mock:talk', messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(waited.statusCode).toBe(200);
    expect(waited.json()).toMatchObject({ state: 'completed', tenant: 'acme', result: { finishReason: 'stop' } });
    await engine.result(id);
    const status = await app.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: as('fk-acme-secret') });
    expect(status.json()).toMatchObject({ id, state: 'completed', attempts: [{ attempt: 1, outcome: 'completed' }] });
  });

  it('cancels a task', async () => {
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: as('fk-acme-secret'),
        payload: { model: 'mock:slow', messages: [{ role: 'user', content: 'x' }] },
      })
    ).json();
    const cancelled = await app.inject({ method: 'DELETE', url: `/v1/tasks/${id}`, headers: as('fk-acme-secret') });
    expect(cancelled.json()).toEqual({ id, state: 'cancelled' });
  });

  it('shows a tenant none of another tenant’s tasks: their ids answer exactly like ids that do not exist', async () => {
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: as('fk-acme-secret'),
        payload: { model: 'mock:slow', messages: [{ role: 'user', content: 'private' }] },
      })
    ).json();
    const foreign = await app.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: as('fk-globex-secret') });
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/tasks/t_does_not_exist',
      headers: as('fk-globex-secret'),
    });
    expect([foreign.statusCode, missing.statusCode]).toEqual([404, 404]);
    expect(foreign.json().error.code).toBe(missing.json().error.code);
    const deleted = await app.inject({ method: 'DELETE', url: `/v1/tasks/${id}`, headers: as('fk-globex-secret') });
    expect(deleted.statusCode).toBe(404);
    expect(engine.status(id)?.state).not.toBe('cancelled');
  });

  it('refuses requests without a valid key, and never takes a key from the URL', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/tasks/x' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/tasks/x', headers: as('wrong') })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/tasks/x?api_key=fk-acme-secret' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
  });

  it('answers bad input with a 4xx JSON error naming what was wrong, never a 5xx', async () => {
    const cases = [
      { payload: { model: 'mock:m', messages: [], maxTokens: -1 }, status: 400, match: /maxTokens/ },
      {
        payload: { model: 'nope:m', messages: [{ role: 'user', content: 'x' }] },
        status: 400,
        match: /unknown provider "nope"/,
      },
      { payload: '{not json', status: 400, match: /JSON/i },
      { payload: 'x'.repeat(100 * 1024), status: 413, match: /too large/i },
      { payload: [1, 2], status: 400, match: /expected a JSON object/ },
    ];
    for (const c of cases) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: { ...as('fk-acme-secret'), 'content-type': 'application/json' },
        payload: typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload),
      });
      expect(response.statusCode, String(c.payload).slice(0, 40)).toBe(c.status);
      expect(response.json().error.message).toMatch(c.match);
    }
    expect((await app.inject({ method: 'GET', url: '/v1/nothing', headers: as('fk-acme-secret') })).statusCode).toBe(
      404,
    );
  });
});

describe('OpenAI-compatible gateway, through the official openai SDK', () => {
  const client = () => new OpenAI({ apiKey: 'fk-acme-secret', baseURL, maxRetries: 0 });

  it('answers chat completions', async () => {
    const completion = await client().chat.completions.create({
      model: 'mock:talk',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello' },
      ],
      max_tokens: 20,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content?.split(' ')).toHaveLength(6);
    expect(completion.usage?.completion_tokens).toBe(6);
  });

  it('streams chat completions, with usage when asked', async () => {
    const stream = await client().chat.completions.create({
      model: 'mock:talk',
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.split(' ')).toHaveLength(6);
    expect(usage).toMatchObject({ completion_tokens: 6 });
  });

  it('lists models and refuses a bad key the way OpenAI does', async () => {
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual(['mock:talk', 'mock:slow']);
    const refused = await new OpenAI({ apiKey: 'bad', baseURL, maxRetries: 0 }).chat.completions
      .create({ model: 'mock:talk', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe('batches and task events over HTTP', () => {
  it('takes a JSONL batch, counts it per state, and streams its results in input order', async () => {
    const body = [
      JSON.stringify({ id: 'a', model: 'mock:talk', prompt: 'one' }),
      '{broken',
      JSON.stringify({ custom_id: 'c', body: { model: 'mock:talk', messages: [{ role: 'user', content: 'three' }] } }),
    ].join('\n');
    const created = await app.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { ...as('fk-acme-secret'), 'content-type': 'application/x-ndjson' },
      payload: body,
    });
    expect(created.statusCode).toBe(202);
    const { id } = created.json();
    const results = await app.inject({
      method: 'GET',
      url: `/v1/batches/${id}/results`,
      headers: as('fk-acme-secret'),
    });
    const lines = results.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.custom_id, l.fanout.line, l.error?.code ?? 'ok'])).toEqual([
      ['a', 1, 'ok'],
      [null, 2, 'invalid_request'],
      ['c', 3, 'ok'],
    ]);
    const summary = await app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: as('fk-acme-secret') });
    expect(summary.json()).toEqual({ id, state: 'completed', lines: 3, counts: { completed: 2, invalid: 1 } });
    expect(
      (await app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: as('fk-globex-secret') })).statusCode,
    ).toBe(404);
  });

  it('streams a task’s events as server-sent events, ending with its response', async () => {
    // The first delta comes 150 ms after the start: the subscription is open long before it.
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: as('fk-acme-secret'),
        payload: { model: 'mock:drip', messages: [{ role: 'user', content: 'events' }], stream: true },
      })
    ).json();
    const response = await fetch(`${baseURL}/tasks/${id}/events`, { headers: as('fk-acme-secret') });
    const events = (await response.text())
      .trim()
      .split('\n\n')
      .map((block) => ({
        name: /^event: (.+)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null'),
      }));
    expect(events[0]?.name).toBe('acknowledged');
    expect(events.at(-1)?.name).toBe('response');
    // Named as over the WebSocket: `state` and `delta`, with the same fields (and the task's id as `id`).
    const deltas = events.filter((e) => e.name === 'delta');
    expect(deltas.map((e) => e.data.text).join('')).toBe(events.at(-1)?.data.result.text);
    expect(
      deltas
        .map((e) => e.data.text)
        .join('')
        .split(' '),
    ).toHaveLength(5);
    expect(deltas[0]?.data).toEqual({ id, task: id, text: expect.any(String), at: expect.any(Number) });
    // Until the next release, each also comes under its old name, as before.
    const legacy = events.filter((e) => e.name === 'task-delta');
    expect(legacy.map((e) => e.data.delta)).toEqual(deltas.map((e) => e.data.text));
  });
});

describe('metrics', () => {
  it("serves Prometheus text with latency histograms, outcomes, tokens and gauges, to the operator's key only", async () => {
    await app.inject({
      method: 'POST',
      url: '/v1/tasks?wait=1',
      headers: as('fk-acme-secret'),
      payload: { model: 'mock:talk', messages: [{ role: 'user', content: 'count me' }] },
    });
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(403);
    // A tenant's key does not show every tenant's models and pipelines.
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: as('fk-acme-secret') })).statusCode).toBe(403);
    const response = await app.inject({ method: 'GET', url: '/metrics', headers: as('fk-operator') });
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.body;
    const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1]);
    expect(value(/^fanout_tasks_total\{model="mock:talk",outcome="completed"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^fanout_task_duration_seconds_count\{model="mock:talk"\} (\d+)$/m)).toBe(
      value(/^fanout_tasks_total\{model="mock:talk",outcome="completed"\} (\d+)$/m),
    );
    expect(value(/^fanout_tokens_total\{model="mock:talk",kind="output"\} (\d+)$/m)).toBeGreaterThanOrEqual(6);
    expect(text).toMatch(/^fanout_provider_duration_seconds_bucket\{le="0\.05",model="mock:talk"\} \d+$/m);
    expect(text).toMatch(/^fanout_tasks_pending \d+$/m);
  });
});

describe('WebSocket /v1/stream', () => {
  const open = (key: string | undefined, origin?: string) =>
    new WebSocket(`${baseURL.replace('http', 'ws')}/stream`, {
      headers: { ...(key ? as(key) : {}), ...(origin ? { origin } : {}) },
    });
  /** The messages a socket receives until `done` says stop. */
  const collect = (socket: WebSocket, done: (messages: any[]) => boolean) =>
    new Promise<any[]>((resolve, reject) => {
      const messages: any[] = [];
      socket.on('message', (data) => {
        messages.push(JSON.parse(data.toString()));
        if (done(messages)) resolve(messages);
      });
      socket.on('error', reject);
    });

  it('submits a task and streams acknowledged, deltas and the response', async () => {
    const socket = open('fk-acme-secret');
    await new Promise((resolve) => socket.once('open', resolve));
    const received = collect(socket, (m) => m.some((x) => x.type === 'response'));
    socket.send(
      JSON.stringify({
        type: 'submit',
        request: { model: 'mock:drip', messages: [{ role: 'user', content: 'over the socket' }], stream: true },
      }),
    );
    const messages = await received;
    expect(messages[0]).toMatchObject({ type: 'acknowledged' });
    expect(messages.find((m) => m.type === 'state')).toMatchObject({ state: 'processing', attempt: 1 });
    const deltas = messages.filter((m) => m.type === 'delta');
    expect(deltas.map((m) => m.text).join('')).toBe(messages.at(-1).result.text);
    // Each delta carries the server's time, in order.
    const times = deltas.map((m) => m.at as number);
    expect(times.every((t) => typeof t === 'number' && Number.isFinite(t))).toBe(true);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    socket.close();
  });

  it('follows a batch as one subscription: each line as it ends, then the counts', async () => {
    const body = [
      JSON.stringify({ id: 'first', model: 'mock:slow', prompt: 'one' }),
      '{broken',
      JSON.stringify({ id: 'third', model: 'mock:talk', prompt: 'three' }),
    ].join('\n');
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { ...as('fk-acme-secret'), 'content-type': 'application/x-ndjson' },
        payload: body,
      })
    ).json();
    const socket = open('fk-acme-secret');
    await new Promise((resolve) => socket.once('open', resolve));
    const received = collect(socket, (m) => m.some((x) => x.type === 'response' && x.counts));
    socket.send(JSON.stringify({ type: 'subscribe', batch: id }));
    const messages = await received;
    expect(messages[0]).toMatchObject({ type: 'acknowledged', batch: id, lines: 3 });
    const lines = messages.slice(1, -1);
    expect(lines.map((m) => [m.type, m.line, m.custom_id]).sort()).toEqual([
      ['error', 2, null],
      ['response', 1, 'first'],
      ['response', 3, 'third'],
    ]);
    expect(lines.find((m) => m.line === 2).error.code).toBe('invalid_request');
    expect(messages.at(-1)).toEqual({ type: 'response', batch: id, lines: 3, counts: { completed: 2, invalid: 1 } });
    // Another tenant cannot follow it.
    const theirs = open('fk-globex-secret');
    await new Promise((resolve) => theirs.once('open', resolve));
    const refused = collect(theirs, (m) => m.length === 1);
    theirs.send(JSON.stringify({ type: 'subscribe', batch: id }));
    expect((await refused)[0]).toMatchObject({ type: 'error', error: { code: 'unknown_task' } });
    socket.close();
    theirs.close();
  });

  it('follows a pipeline run: each step as it ends, then the run', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: {
        pipeline: {
          steps: {
            a: { model: 'mock:slow', prompt: 'first' },
            b: { model: 'mock:talk', prompt: 'then {{ steps.a.output }}' },
          },
        },
      },
    });
    const { id } = started.json();
    const socket = open('fk-acme-secret');
    await new Promise((resolve) => socket.once('open', resolve));
    const received = collect(socket, (m) => m.some((x) => x.type === 'response' || x.type === 'error'));
    socket.send(JSON.stringify({ type: 'subscribe', run: id }));
    const messages = await received;
    expect(messages.map((m) => [m.type, m.step, m.state])).toEqual([
      ['acknowledged', undefined, 'running'],
      ['state', 'a', 'completed'],
      ['state', 'b', 'completed'],
      ['response', undefined, 'completed'],
    ]);
    expect(messages[0].steps).toEqual({ a: 'pending', b: 'pending' });
    expect(messages.at(-1)).toMatchObject({ run: id, steps: { a: { state: 'completed' }, b: { state: 'completed' } } });
    expect(messages.at(-1).timeline.map((c: { step: string }) => c.step)).toEqual(['a', 'b']);
    socket.close();
  });

  it('answers bad messages and foreign tasks with errors and stays open', async () => {
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: as('fk-globex-secret'),
        payload: { model: 'mock:slow', messages: [{ role: 'user', content: 'theirs' }] },
      })
    ).json();
    const socket = open('fk-acme-secret');
    await new Promise((resolve) => socket.once('open', resolve));
    const received = collect(socket, (m) => m.length === 3);
    socket.send('{not json');
    socket.send(JSON.stringify({ type: 'subscribe', task: id }));
    socket.send(JSON.stringify({ type: 'dance' }));
    const messages = await received;
    expect(messages.map((m) => m.error.code)).toEqual(['invalid_request', 'unknown_task', 'invalid_request']);
    expect(socket.readyState).toBe(WebSocket.OPEN);
    socket.close();
  });

  it('refuses a socket without a key or from another site, and closes on an oversized frame', async () => {
    const status = (socket: WebSocket) =>
      new Promise<number>((resolve) => socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(await status(open(undefined))).toBe(401);
    expect(await status(open('fk-acme-secret', 'https://evil.example'))).toBe(403);
    const socket = open('fk-acme-secret');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    socket.send('x'.repeat(70 * 1024));
    expect(await closed).toBe(1009);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('pipeline runs over HTTP', () => {
  it('checks a pipeline before it runs, then reports its steps and timeline', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: {
        pipeline: {
          steps: {
            a: { model: 'mock:talk', prompt: '{{ steps.b.output }}' },
            b: { model: 'mock:talk', prompt: '{{ steps.a.output }}' },
          },
        },
      },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('dependency cycle');
    const missing = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: { pipeline: { inputs: ['topic'], steps: { a: { model: 'mock:talk', prompt: '{{ inputs.topic }}' } } } },
    });
    expect(missing.json().error.message).toContain('inputs.topic: required');
    const started = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: {
        pipeline: {
          inputs: ['topic'],
          steps: {
            a: { model: 'mock:talk', prompt: 'about {{ inputs.topic }}' },
            b: { model: 'mock:talk', prompt: 'then {{ steps.a.output }}' },
          },
        },
        inputs: { topic: 'caches' },
      },
    });
    expect(started.statusCode).toBe(202);
    const { id } = started.json();
    const view = await runEnded(id, started.json());
    expect(view).toMatchObject({ state: 'completed', steps: { a: { state: 'completed' }, b: { state: 'completed' } } });
    expect(view.timeline.map((c: { step: string }) => c.step)).toEqual(['a', 'b']);
    expect(
      (await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: as('fk-globex-secret') })).statusCode,
    ).toBe(404);
    // The run's calls are the tenant's own tasks.
    expect(engine.status(view.timeline[0].taskId)?.tenant).toBe('acme');
    // Its steps are timed in /metrics.
    const metrics = (await app.inject({ method: 'GET', url: '/metrics', headers: as('fk-operator') })).body;
    expect(
      Number(
        /^fanout_step_duration_seconds_count\{pipeline="[^"]+",step="b",state="completed"\} (\d+)$/m.exec(metrics)?.[1],
      ),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('pipeline runs calling the server’s tools', () => {
  it('runs a tool step with the tools the server was given, and refuses one naming a tool it lacks', async () => {
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: { pipeline: { steps: { a: { tool: 'shell', args: { cmd: 'ls' } } } } },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toBe(
      'pipeline: steps.a.tool: no tool "shell" is registered on this server (fanout serve --tools <module>)',
    );
    const started = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: as('fk-acme-secret'),
      payload: {
        pipeline: {
          steps: {
            search: { tool: 'lookup', args: { q: 'caches' } },
            answer: { model: 'mock:talk', prompt: 'Given {{ steps.search.output }}' },
          },
        },
      },
    });
    expect(started.statusCode).toBe(202);
    const { id } = started.json();
    const view = await runEnded(id, started.json());
    expect(view).toMatchObject({ state: 'completed', steps: { search: { output: 'found caches' } } });
    expect(view.tools.map((t: { step: string }) => t.step)).toEqual(['search']);
  });
});

describe('the dashboard', () => {
  /** A socket as a browser opens it: the key as a subprotocol beside `fanout`, no Authorization header. */
  const asBrowser = (key: string) =>
    new WebSocket(`${baseURL.replace('http', 'ws')}/stream`, [
      'fanout',
      `fanout.key.${Buffer.from(key).toString('base64url')}`,
    ]);
  const firstDashboard = (socket: WebSocket, where: (message: any) => boolean = () => true) =>
    new Promise<any>((resolve, reject) => {
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString());
        if (message.type === 'dashboard' && where(message)) resolve(message);
      });
      socket.on('error', reject);
    });

  it('serves its page and files to anyone, with a policy that keeps the page to this server', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('/dashboard/app.js');
    const script = await app.inject({ method: 'GET', url: '/dashboard/app.js' });
    expect([script.statusCode, script.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect((await app.inject({ method: 'GET', url: '/dashboard/secret.txt' })).statusCode).toBe(401);
    expect(
      (await app.inject({ method: 'GET', url: '/dashboard/secret.txt', headers: as('fk-acme-secret') })).statusCode,
    ).toBe(404);
  });

  it("takes a browser's key from the socket's subprotocol, and sends each tenant only its own figures", async () => {
    const wrong = asBrowser('fk-nobody');
    const refused = await new Promise<number>((resolve) =>
      wrong.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    expect(refused).toBe(401);

    const handle = engine.submit({ model: 'mock:slow', tenant: 'acme', messages: [{ role: 'user', content: 'seen' }] });
    const acme = asBrowser('fk-acme-secret');
    const globex = asBrowser('fk-globex-secret');
    await Promise.all([acme, globex].map((socket) => new Promise((resolve) => socket.once('open', resolve))));
    expect(acme.protocol).toBe('fanout');
    const acmeSees = firstDashboard(acme, (m) => m.tasks.some((t: any) => t.id === handle.id));
    const globexSees = firstDashboard(globex);
    for (const socket of [acme, globex]) socket.send(JSON.stringify({ type: 'subscribe', dashboard: true }));
    const [mine, theirs] = await Promise.all([acmeSees, globexSees]);
    expect(mine.tasks.find((t: any) => t.id === handle.id)).toMatchObject({ model: 'mock:slow' });
    expect(mine.limits.map((l: any) => l.key)).toContain('mock:slow');
    expect(theirs.tasks.some((t: any) => t.id === handle.id)).toBe(false);
    expect(theirs.seconds.completed).toHaveLength(300);
    await handle.result();
    // Its end reaches the next figures: a completion in the last seconds, and the model's latency.
    const ended = await firstDashboard(
      acme,
      (m) => m.tasks.find((t: any) => t.id === handle.id)?.state === 'completed',
    );
    expect(ended.latency.model.find((row: any) => row.name === 'mock:slow').count).toBeGreaterThan(0);
    // The tool step of the run above, timed per tool.
    expect(ended.latency.tool.map((row: any) => row.name)).toContain('search');
    acme.close();
    globex.close();
  });
});

describe('OpenAPI', () => {
  it('describes every route the server answers, with the validator’s own request schema', async () => {
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(401);
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json', headers: as('fk-acme-secret') })).json();
    expect(doc.openapi).toBe('3.1.0');
    const described = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    // Fastify prints its routes as a tree: a child's path continues its parent's, four columns deeper.
    const stack: string[] = [];
    const served = app
      .printRoutes({ commonPrefix: false })
      .split('\n')
      .flatMap((line) => {
        const match = /^((?:[│ ] {3})*)(?:├── |└── )(\S+) \(([A-Z, ]+)\)/.exec(line);
        if (!match) return [];
        const depth = match[1]!.length / 4;
        stack.length = depth;
        stack.push(match[2]!);
        // Under the root route `/`, children print without their leading slash.
        const path = stack.reduce((at, part) =>
          at.endsWith('/') || part.startsWith('/') ? at + part : `${at}/${part}`,
        );
        return match[3]!
          .split(', ')
          .filter((m) => m !== 'HEAD')
          .map((m) => `${m} ${path}`);
      });
    expect(served.length).toBeGreaterThan(10);
    for (const route of served) expect(described, route).toContain(route);
    expect(doc.components.schemas.TaskRequest.properties.maxTokens.type).toBe('integer');
  });
});
