import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../contracts/errors.js';
import { ManualClock } from '../../contracts/manual-clock.js';
import type { ModelCall } from '../../contracts/provider.js';
import { MockProvider } from './mock-provider.js';

const call = (content: string, extra: Partial<ModelCall> = {}): ModelCall => ({
  model: 'm',
  messages: [{ role: 'user', content }],
  maxTokens: 1024,
  ...extra,
});

function context(clock = new ManualClock()) {
  return { clock, attempt: 1, signal: new AbortController().signal };
}

describe('mock provider', () => {
  it('answers the same prompt with the same text, and another prompt differently', async () => {
    const mock = new MockProvider();
    const a = await mock.complete(call('review this diff'), context());
    const b = await mock.complete(call('review this diff'), context());
    const c = await mock.complete(call('review that diff'), context());
    expect(a.text).toBe(b.text);
    expect(a.text).not.toBe(c.text);
    expect(a.text.split(' ')).toHaveLength(24);
  });

  it('reports usage by its own tokenizer and caps output at max tokens', async () => {
    const mock = new MockProvider({ defaults: { outputTokens: 50 } });
    const result = await mock.complete(call('twelve chars', { system: 'sys', maxTokens: 20 }), context());
    expect(result.usage).toEqual({
      inputTokens: 3 + (4 + 1) + (4 + 3),
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(result.finishReason).toBe('length');
  });

  it('takes its latency on the clock it is given', async () => {
    const mock = new MockProvider({ defaults: { latency: { kind: 'fixed', ms: 250 } } });
    const clock = new ManualClock();
    let done = false;
    void mock.complete(call('x'), context(clock)).then(() => (done = true));
    await clock.advance(249);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
  });

  it('streams its first token after the whole latency when no per-token timing is set', async () => {
    const mock = new MockProvider({ defaults: { latency: 250 } });
    const clock = new ManualClock();
    const texts: string[] = [];
    void (async () => {
      for await (const event of mock.stream(call('x'), context(clock)))
        if (event.type === 'delta') texts.push(event.text);
    })();
    await clock.advance(249);
    expect(texts).toEqual([]);
    await clock.advance(1);
    expect(texts.length).toBeGreaterThan(0);
  });

  it('draws lognormal latencies that repeat for a seed and centre on the median', async () => {
    const draw = async (seed: number) => {
      const mock = new MockProvider({ seed, defaults: { latency: { kind: 'lognormal', medianMs: 1000, sigma: 0.5 } } });
      const clock = new ManualClock();
      const ends: number[] = [];
      for (let i = 0; i < 201; i++) {
        const start = clock.now();
        const pending = mock.complete(call(`q${i}`), context(clock));
        await clock.runAll();
        await pending;
        ends.push(clock.now() - start);
      }
      return ends;
    };
    const first = await draw(7);
    expect(await draw(7)).toEqual(first);
    expect(await draw(8)).not.toEqual(first);
    const median = [...first].sort((a, b) => a - b)[100] as number;
    expect(median).toBeGreaterThan(850);
    expect(median).toBeLessThan(1150);
  });

  it('answers 429 with retry-after and rate-limit information past its own limits', async () => {
    const mock = new MockProvider({
      models: { m: { limits: { requestsPerMinute: 2, tokensPerMinute: 100_000, transitMs: 0 } } },
    });
    const clock = new ManualClock();
    const first = await mock.complete(call('a'), context(clock));
    expect(first.rateLimit).toMatchObject({
      requestsLimit: 2,
      requestsRemaining: 1,
      requestsResetMs: 30_000,
      tokensLimit: 100_000,
    });
    await mock.complete(call('b'), context(clock));
    const refused = await mock.complete(call('c'), context(clock)).catch((e: unknown) => e as ProviderError);
    expect(refused).toBeInstanceOf(ProviderError);
    expect(refused).toMatchObject({ code: 'rate_limited', status: 429, retryAfterMs: 30_000, retryable: true });
    expect(refused.rateLimit).toMatchObject({
      requestsLimit: 2,
      requestsRemaining: 0,
      requestsResetMs: 60_000,
      retryAfterMs: 30_000,
    });
    expect(mock.stats('m')).toMatchObject({ calls: 3, completed: 2, rateLimited: 1 });
    await clock.advance(30_000);
    await expect(mock.complete(call('c'), context(clock))).resolves.toMatchObject({ usage: { outputTokens: 24 } });
  });

  it('injects faults at the configured rates', async () => {
    const mock = new MockProvider({ seed: 3, defaults: { faults: { serverError: 0.1, overloaded: 0.05 } } });
    const outcomes: string[] = [];
    for (let i = 0; i < 2000; i++) {
      outcomes.push(
        await mock.complete(call(`q${i}`), context()).then(
          () => 'ok',
          (e: ProviderError) => String(e.status),
        ),
      );
    }
    const count = (what: string) => outcomes.filter((o) => o === what).length;
    expect(count('500')).toBeGreaterThan(150);
    expect(count('500')).toBeLessThan(250);
    expect(count('529')).toBeGreaterThan(60);
    expect(count('529')).toBeLessThan(140);
    expect(mock.stats()).toMatchObject({
      serverErrors: count('500'),
      overloaded: count('529'),
      completed: count('ok'),
    });
  });

  it('hangs on a timeout fault until the call is aborted', async () => {
    const mock = new MockProvider({ defaults: { faults: { timeout: 1 } } });
    const controller = new AbortController();
    const pending = mock.complete(call('x'), { clock: new ManualClock(), attempt: 1, signal: controller.signal });
    controller.abort(new Error('gave up'));
    await expect(pending).rejects.toThrow('gave up');
    expect(mock.stats()).toMatchObject({ timeouts: 1, inFlight: 0 });
  });
});
