import { describe, expect, it } from 'vitest';
import { ManualClock } from '../contracts/manual-clock.js';
import { MemoryCacheStore } from '../store/memory/memory-cache-store.js';
import type { ModelCall, Provider } from '../contracts/provider.js';
import type { ModelResult, TaskRequest } from '../contracts/types.js';
import { Engine } from './engine.js';

/** An upstream that answers each call with the next of its texts, after 100 ms. */
function scripted(texts: string[], clock: ManualClock): Provider & { calls: number } {
  const provider = {
    name: 'up',
    calls: 0,
    accounting: () => ({ rule: 'openai' as const }),
    async complete(call: ModelCall): Promise<ModelResult> {
      const text = texts[Math.min(provider.calls, texts.length - 1)] as string;
      provider.calls += 1;
      await clock.sleep(100);
      const usage = { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 };
      return { text, usage, finishReason: 'stop', model: call.model };
    },
    stream: () => {
      throw new Error('not used');
    },
  };
  return provider;
}

const findings = {
  type: 'json_schema' as const,
  name: 'findings',
  schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
};

function setup(texts: string[]) {
  const clock = new ManualClock();
  const upstream = scripted(texts, clock);
  const engine = new Engine({
    clock,
    providers: [upstream],
    cache: { store: new MemoryCacheStore() },
    retry: { baseDelayMs: 0, maxDelayMs: 0 },
    models: { 'up:m': { limits: { requestsPerMinute: 600 } } },
  });
  const request: TaskRequest = {
    model: 'up:m',
    messages: [{ role: 'user', content: 'Review this.' }],
    responseFormat: findings,
  };
  return { clock, upstream, engine, request };
}

describe('checked structured output', () => {
  it('asks again when an answer does not parse or match the schema, each call charged, and hands back the parsed object', async () => {
    const { clock, upstream, engine, request } = setup(['Sure! {"ok": true}', '{"ok": "yes"}', '{"ok": true}']);
    const handle = engine.submit(request);
    await clock.runAll();
    const result = await handle.result();
    expect(result.object).toEqual({ ok: true });
    expect(upstream.calls).toBe(3);
    const attempts = handle.status().attempts;
    expect(attempts.map((a) => [a.outcome, a.error?.code])).toEqual([
      ['failed', 'invalid_output'],
      ['failed', 'invalid_output'],
      ['completed', undefined],
    ]);
    expect(attempts[0]?.error?.message).toMatch(/^the answer is not JSON/);
    expect(attempts[1]?.error?.message).toBe('the answer does not match the schema "findings": /ok must be boolean');
    // Every answered call is charged, the ones asked again included.
    expect(engine.limiter.stats('up:m')?.charged.requests).toBe(3);
    await engine.close();
  });

  it('fails with invalid_output when no attempt gives a valid answer, and passes any answer with checkOutput: false', async () => {
    const { clock, engine, request } = setup(['no JSON here']);
    const failing = engine.submit({ ...request, maxAttempts: 2 });
    const unchecked = engine.submit({ ...request, checkOutput: false });
    await clock.runAll();
    await expect(failing.result()).rejects.toMatchObject({ code: 'retries_exhausted' });
    expect(failing.status().error?.message).toMatch(/last error: the answer is not JSON/);
    expect(await unchecked.result()).toMatchObject({ text: 'no JSON here' });
    expect((await unchecked.result()).object).toBeUndefined();
    await engine.close();
  });

  it('refuses at submit a schema that cannot be compiled, before any call', async () => {
    const { upstream, engine, request } = setup(['{}']);
    const bad = { ...findings, schema: { type: 'no-such-type' } };
    expect(() => engine.submit({ ...request, responseFormat: bad })).toThrow(
      /responseFormat\.schema: not a JSON Schema/,
    );
    expect(upstream.calls).toBe(0);
    await engine.close();
  });
});
