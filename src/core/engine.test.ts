import { describe, expect, it } from 'vitest';
import { ManualClock } from '../contracts/manual-clock.js';
import { MemoryLimiter } from '../limits/limiter.js';
import { MockProvider, type MockProviderOptions } from '../providers/mock/mock-provider.js';
import type { Provider } from '../contracts/provider.js';
import { createEngine } from '../create-engine.js';
import type { EngineOptions } from './engine.js';
import { FanoutError, ProviderError, RetryError } from '../contracts/errors.js';
import type { EngineEvent, EventOf } from './events.js';
import type { Random } from '../contracts/random.js';
import type { TaskRequest } from '../contracts/types.js';

const fixedRandom = (value: number): Random => ({ next: () => value });

function setup(options: Omit<EngineOptions, 'clock'> & { mock?: MockProviderOptions } = {}) {
  const clock = new ManualClock();
  const mock = new MockProvider(options.mock);
  const providers = Array.isArray(options.providers) ? options.providers : Object.values(options.providers ?? {});
  const engine = createEngine({ random: fixedRandom(0.5), ...options, clock, providers: [mock, ...providers] });
  const events: EngineEvent[] = [];
  engine.on('*', (event) => events.push(event));
  const startsOf = (id: string): number[] =>
    events.filter((e) => e.type === 'task-started' && e.taskId === id).map((e) => e.at);
  return { clock, mock, engine, events, startsOf };
}

const ask = (model: string, content = 'hello', extra: Partial<TaskRequest> = {}): TaskRequest => ({
  model,
  messages: [{ role: 'user', content }],
  ...extra,
});

/** A provider the test scripts one answer at a time: each call takes the next step. */
function scriptedProvider(name: string, steps: Array<Error | number>): Provider & { calls: number[] } {
  const calls: number[] = [];
  return {
    name,
    calls,
    accounting: () => ({ rule: 'anthropic' }),
    async complete(call, context) {
      calls.push(context.clock.now());
      const step = steps[Math.min(calls.length - 1, steps.length - 1)];
      if (step instanceof Error) throw step;
      if (step && step > 0) await context.clock.sleep(step, context.signal);
      return {
        text: 'ok',
        usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
        finishReason: 'stop',
        model: call.model,
      };
    },
    stream() {
      throw new Error('not used');
    },
  };
}

const rateLimited = (retryAfterMs?: number) =>
  new ProviderError('rate_limited', '429 rate limit', { provider: 'fake', status: 429, retryAfterMs, retryable: true });
const serverError = () =>
  new ProviderError('server_error', '500 internal', { provider: 'fake', status: 500, retryable: true });

describe('engine pacing on a 60 rpm key', () => {
  it('starts 60 at 0 ms, the 61st at exactly 1,000 ms and the 62nd at 2,000 ms (no transit guard)', async () => {
    const { clock, engine, startsOf } = setup({
      models: { 'mock:m': { limits: { requestsPerMinute: 60, transitMs: 0 } } },
    });
    const handles = Array.from({ length: 62 }, (_, i) => engine.submit(ask('mock:m', `q${i}`)));
    await clock.advance(0);
    expect(handles.slice(0, 60).map((h) => startsOf(h.id)[0])).toEqual(new Array(60).fill(0));
    expect(handles[60]?.status().state).toBe('rate_limited');
    expect(handles[60]?.status().eta).toBe(1000);
    await clock.advanceTo(999);
    expect(startsOf(handles[60]!.id)).toEqual([]);
    await clock.advanceTo(1000);
    expect(startsOf(handles[60]!.id)).toEqual([1000]);
    await clock.advanceTo(2000);
    expect(startsOf(handles[61]!.id)).toEqual([2000]);
    await engine.idle();
  });

  it('with the default 100 ms transit guard: 59 at 0 ms, the 60th at 100 ms, the 61st at 1,100 ms', async () => {
    const { clock, engine, startsOf } = setup({ models: { 'mock:m': { limits: { requestsPerMinute: 60 } } } });
    const handles = Array.from({ length: 61 }, (_, i) => engine.submit(ask('mock:m', `q${i}`)));
    await clock.runAll();
    const starts = handles.map((h) => startsOf(h.id)[0]);
    expect(starts.slice(0, 59)).toEqual(new Array(59).fill(0));
    expect(starts.slice(59)).toEqual([100, 1100]);
  });

  it('gives unused output tokens back as each call ends, so a zero-latency run is not held back', async () => {
    const { clock, engine, startsOf } = setup({
      models: { 'mock:m': { limits: { requestsPerMinute: 600, tokensPerMinute: 6000 } } },
      mock: { defaults: { outputTokens: 10 } },
    });
    // Each call reserves its input (3 + 4 + 1 = 8 tokens for "abcd") + 992 max tokens = 1,000.
    const handles = Array.from({ length: 7 }, (_, i) =>
      engine.submit(ask('mock:m', 'abcd', { maxTokens: 992, label: String(i) })),
    );
    await clock.advance(0);
    // 6 fit in 6,000 tokens; each refunds 982 unused output at once (latency 0), so the 7th goes too.
    expect(handles.map((h) => startsOf(h.id)[0])).toEqual([0, 0, 0, 0, 0, 0, 0]);
    await engine.idle();
  });
});

describe('settling to real usage', () => {
  const limits = { outputTokensPerMinute: 1000, transitMs: 0 };

  it('anthropic accounting: refunded output lets the next call in when the last one ends', async () => {
    const { clock, engine, startsOf } = setup({
      models: { 'mock:m': { limits } },
      mock: { defaults: { outputTokens: 100, latency: 1000 } },
    });
    const handles = Array.from({ length: 4 }, (_, i) => engine.submit(ask('mock:m', `q${i}`, { maxTokens: 500 })));
    await clock.runAll();
    expect(handles.map((h) => startsOf(h.id)[0])).toEqual([0, 0, 1000, 2000]);
    expect(engine.limiter.stats('mock:m')?.charged.outputTokens).toBe(400);
  });

  it('openai accounting: nothing is refunded, so the same calls wait for the bucket to refill', async () => {
    const { clock, engine, startsOf } = setup({
      models: { 'mock:m': { limits, accounting: 'openai' } },
      mock: { defaults: { outputTokens: 100, latency: 1000 } },
    });
    const handles = Array.from({ length: 4 }, (_, i) => engine.submit(ask('mock:m', `q${i}`, { maxTokens: 500 })));
    await clock.runAll();
    expect(handles.map((h) => startsOf(h.id)[0])).toEqual([0, 0, 30_000, 60_000]);
    expect(engine.limiter.stats('mock:m')?.charged.outputTokens).toBe(2000);
  });
});

describe('request larger than a limit', () => {
  it('fails at once with request_too_large and never calls the provider', async () => {
    const { clock, engine, mock } = setup({ models: { 'mock:m': { limits: { tokensPerMinute: 1000 } } } });
    const handle = engine.submit(ask('mock:m', 'hi', { maxTokens: 2000 }));
    expect(handle.status().state).toBe('failed');
    await expect(handle.result()).rejects.toMatchObject({ code: 'request_too_large', retryable: false });
    const small = engine.submit(ask('mock:m', 'hi', { maxTokens: 100 }));
    await clock.advance(0);
    await expect(small.result()).resolves.toMatchObject({ finishReason: 'stop' });
    expect(mock.stats().calls).toBe(1);
  });
});

describe('retries', () => {
  it('backs off with full jitter from the injected random source: 250, 500, 1,000 ms', async () => {
    const fake = scriptedProvider('fake', [serverError()]);
    const { clock, engine } = setup({ providers: [fake], retry: { maxAttempts: 4 } });
    const handle = engine.submit(ask('fake:x'));
    const outcome = handle.result().catch((error: unknown) => error);
    await clock.runAll();
    expect(fake.calls).toEqual([0, 250, 750, 1750]);
    const error = (await outcome) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.code).toBe('retries_exhausted');
    expect(error.attempts.map((a) => [a.startedAt, a.error?.status])).toEqual([
      [0, 500],
      [250, 500],
      [750, 500],
      [1750, 500],
    ]);
    expect(handle.status().attempts).toHaveLength(4);
  });

  it('honours retry-after to the millisecond when it is longer than the backoff', async () => {
    const fake = scriptedProvider('fake', [rateLimited(1234), 0]);
    const { clock, engine } = setup({ providers: [fake] });
    const handle = engine.submit(ask('fake:x'));
    await clock.advanceTo(1233);
    expect(fake.calls).toEqual([0]);
    expect(handle.status()).toMatchObject({ state: 'rate_limited', eta: 1234 });
    await clock.advanceTo(1234);
    expect(fake.calls).toEqual([0, 1234]);
    await expect(handle.result()).resolves.toMatchObject({ text: 'ok' });
  });

  it('does not retry what cannot succeed (bad request), and keeps the error', async () => {
    const fake = scriptedProvider('fake', [
      new ProviderError('bad_request', '400 invalid', { provider: 'fake', status: 400 }),
    ]);
    const { clock, engine } = setup({ providers: [fake] });
    const handle = engine.submit(ask('fake:x'));
    await clock.runAll();
    expect(fake.calls).toEqual([0]);
    await expect(handle.result()).rejects.toMatchObject({ code: 'bad_request', status: 400 });
  });

  it('gives up when the next attempt would pass the deadline', async () => {
    const fake = scriptedProvider('fake', [rateLimited(10_000)]);
    const { clock, engine } = setup({ providers: [fake] });
    const handle = engine.submit(ask('fake:x', 'hi', { deadlineMs: 5000 }));
    await clock.runAll();
    expect(fake.calls).toEqual([0]);
    await expect(handle.result()).rejects.toMatchObject({ code: 'deadline_exceeded' });
  });

  it('times out a hanging attempt and retries it', async () => {
    const { clock, engine, startsOf } = setup({ mock: { defaults: { latency: 10_000 } }, random: fixedRandom(0) });
    const handle = engine.submit(ask('mock:slow', 'hi', { attemptTimeoutMs: 1000, maxAttempts: 2 }));
    await clock.runAll();
    expect(startsOf(handle.id)).toEqual([0, 1000]);
    const error = await handle.result().catch((e: unknown) => e as RetryError);
    expect(error).toMatchObject({ code: 'retries_exhausted' });
    expect((error as RetryError).attempts.map((a) => [a.endedAt, a.error?.code])).toEqual([
      [1000, 'timeout'],
      [2000, 'timeout'],
    ]);
  });
});

describe('a limiter given to the engine', () => {
  it('is the one every admission goes through: two engines on one limiter share a 60 rpm budget', async () => {
    const clock = new ManualClock();
    const limiter = new MemoryLimiter();
    const options = {
      clock,
      limiter,
      cache: false as const,
      models: { 'mock:m': { limits: { requestsPerMinute: 60, transitMs: 0 } } },
    };
    const first = createEngine(options);
    const second = createEngine(options);
    expect(first.limiter).toBe(limiter);
    const events: EngineEvent[] = [];
    second.on('task-started', (event) => events.push(event));
    const a = Array.from({ length: 60 }, (_, i) => first.submit(ask('mock:m', `a${i}`)));
    await clock.advance(0);
    const b = second.submit(ask('mock:m', 'b'));
    await clock.runAll();
    expect(a.every((h) => h.status().attempts[0]?.startedAt === 0)).toBe(true);
    expect(events.map((e) => e.at)).toEqual([1000]);
    expect(b.status().state).toBe('completed');
    expect(limiter.stats('mock:m')?.charged.requests).toBe(61);
  });
});

describe('cooldowns', () => {
  it('pauses the whole key when the provider says wait, including tasks that never asked', async () => {
    // An upstream that says nothing of its limits until it refuses: ok, 429 (wait 60 s), then ok.
    const fake = scriptedProvider('fake', [0, rateLimited(60_000), 0]);
    const { clock, engine, startsOf } = setup({ providers: [fake] });
    const first = engine.submit(ask('fake:m', 'a'));
    const second = engine.submit(ask('fake:m', 'b'));
    await clock.advance(0);
    expect(first.status().state).toBe('completed');
    expect(second.status()).toMatchObject({ state: 'rate_limited', eta: 60_000 });
    await clock.advanceTo(1000);
    const late = engine.submit(ask('fake:m', 'c'));
    await clock.advanceTo(59_999);
    expect(startsOf(late.id)).toEqual([]);
    expect(fake.calls).toEqual([0, 0]);
    await clock.advanceTo(60_000);
    expect(startsOf(second.id)).toEqual([0, 60_000]);
    expect(startsOf(late.id)).toEqual([60_000]);
    await clock.runAll();
    expect([second.status().state, late.status().state]).toEqual(['completed', 'completed']);
  });

  it('starts cautiously on a model whose limits it was not told, and learns them from the first answer', async () => {
    // The upstream allows 1 request per minute and says so in its answers; fanout was told nothing.
    const { clock, engine, mock, startsOf } = setup({
      mock: { models: { m: { limits: { requestsPerMinute: 1, burstSeconds: 60 } } } },
    });
    const handles = ['a', 'b', 'c'].map((c) => engine.submit(ask('mock:m', c)));
    await clock.runAll();
    expect(handles.map((h) => startsOf(h.id))).toEqual([[0], [60_000], [120_000]]);
    expect(mock.stats('m')).toMatchObject({ calls: 3, rateLimited: 0 });
  });

  it('charges and settles every later call by its tokens once the first answer says there is a token limit', async () => {
    // 1,000 tokens a minute, said only in the answers; each call reserves up to 200 output tokens and uses far fewer.
    const { clock, engine, mock, startsOf } = setup({
      mock: { models: { m: { latency: 100, outputTokens: 10, limits: { tokensPerMinute: 1_000 } } } },
    });
    const handles = Array.from({ length: 20 }, (_, i) => engine.submit(ask('mock:m', `q${i}`, { maxTokens: 200 })));
    await clock.runAll();
    expect(handles.every((h) => h.status().state === 'completed')).toBe(true);
    expect(mock.stats('m')).toMatchObject({ calls: 20, rateLimited: 0 });
    // Four reservations of ~208 tokens fit at once; each answer gives back what it did not use, so four more go 100 ms later.
    // Had each reservation stood (as it did before a token limit was known), the last call would start at 169 s.
    expect(handles.map((h) => startsOf(h.id)[0])).toEqual([
      0, 100, 100, 100, 100, 200, 200, 200, 200, 300, 300, 300, 300, 400, 400, 400, 500, 500, 500, 600,
    ]);
    expect(engine.limiter.buckets('mock:m').map((b) => b.name)).toEqual(['tokensPerMinute']);
  });
});

describe('workers and rate limits', () => {
  it('holds no worker while rate-limited: another key uses the only worker', async () => {
    const { clock, engine, startsOf } = setup({
      concurrency: 1,
      models: { 'mock:limited': { limits: { requestsPerMinute: 1 } } },
      mock: { defaults: { latency: 100 } },
    });
    const a1 = engine.submit(ask('mock:limited', 'a1'));
    const a2 = engine.submit(ask('mock:limited', 'a2'));
    const b1 = engine.submit(ask('mock:free', 'b1'));
    await clock.runAll();
    expect(startsOf(a1.id)).toEqual([0]);
    expect(startsOf(b1.id)).toEqual([100]);
    expect(startsOf(a2.id)).toEqual([60_000]);
  });

  it('records the time split: queued, rate-limited and provider time', async () => {
    const { clock, engine } = setup({
      concurrency: 1,
      models: { 'mock:m': { limits: { requestsPerMinute: 1 } } },
      mock: { defaults: { latency: 100 } },
    });
    engine.submit(ask('mock:m', 'a'));
    const second = engine.submit(ask('mock:m', 'b'));
    await clock.runAll();
    expect(second.status().timing).toEqual({ queuedMs: 100, rateLimitedMs: 59_900, providerMs: 100, totalMs: 60_100 });
  });

  it('runs higher priority first and FIFO within a priority', async () => {
    const { clock, engine, events } = setup({ concurrency: 1, mock: { defaults: { latency: 10 } } });
    const labels = ['a', 'b', 'c', 'd', 'e'];
    const priorities = [0, 0, 5, 0, 5];
    labels.forEach((label, i) => engine.submit(ask('mock:m', label, { label, priority: priorities[i] })));
    await clock.runAll();
    expect(events.filter((e) => e.type === 'task-started').map((e) => e.label)).toEqual(['c', 'e', 'a', 'b', 'd']);
  });
});

describe('cancellation', () => {
  it('cancels a queued task: it never calls the provider', async () => {
    const { clock, engine, mock } = setup({ concurrency: 1, mock: { defaults: { latency: 1000 } } });
    const a = engine.submit(ask('mock:m', 'a'));
    const b = engine.submit(ask('mock:m', 'b'));
    await clock.advance(0);
    expect(b.status().state).toBe('queued');
    expect(b.cancel()).toBe(true);
    await expect(b.result()).rejects.toMatchObject({ code: 'cancelled' });
    await clock.runAll();
    expect(a.status().state).toBe('completed');
    expect(mock.stats().calls).toBe(1);
    expect(b.cancel()).toBe(false);
  });

  it('cancels a rate-limited task', async () => {
    const { clock, engine, mock } = setup({ models: { 'mock:m': { limits: { requestsPerMinute: 1 } } } });
    engine.submit(ask('mock:m', 'a'));
    const b = engine.submit(ask('mock:m', 'b'));
    await clock.advance(0);
    expect(b.status().state).toBe('rate_limited');
    b.cancel();
    await clock.runAll();
    expect(b.status().state).toBe('cancelled');
    expect(mock.stats().calls).toBe(1);
  });

  it('cancels a task in flight: aborts the call and frees its slot at once', async () => {
    const { clock, engine, mock, startsOf } = setup({
      models: { 'mock:m': { limits: { maxConcurrent: 1 } } },
      mock: { defaults: { latency: 1000 } },
    });
    const a = engine.submit(ask('mock:m', 'a'));
    const b = engine.submit(ask('mock:m', 'b'));
    await clock.advanceTo(500);
    expect(a.status().state).toBe('processing');
    a.cancel();
    await clock.advance(0);
    expect(mock.stats('m')).toMatchObject({ cancelled: 1, inFlight: 1 });
    expect(startsOf(b.id)).toEqual([500]);
    await clock.runAll();
    expect(a.status()).toMatchObject({ state: 'cancelled', attempts: [{ outcome: 'cancelled', endedAt: 500 }] });
    expect(b.status().state).toBe('completed');
  });

  it('fails a waiting task at its deadline', async () => {
    const { clock, engine } = setup({ models: { 'mock:m': { limits: { requestsPerMinute: 1 } } } });
    engine.submit(ask('mock:m', 'a'));
    const b = engine.submit(ask('mock:m', 'b', { deadlineMs: 5000 }));
    await clock.advanceTo(4999);
    expect(b.status().state).toBe('rate_limited');
    await clock.advanceTo(5000);
    expect(b.status()).toMatchObject({ state: 'failed', error: { code: 'deadline_exceeded' }, endedAt: 5000 });
  });
});

describe('gather and map', () => {
  it('returns outcomes in input order, with failures as values', async () => {
    const { clock, engine } = setup({ mock: { models: { slow: { latency: 300 }, fast: { latency: 100 } } } });
    const pending = engine.gather([
      ask('mock:slow', 'a'),
      ask('nope:x', 'b'),
      ask('mock:fast', 'c'),
      { model: 'mock:fast', messages: [] },
    ]);
    await clock.runAll();
    const outcomes = await pending;
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, false]);
    expect(outcomes[1]).toMatchObject({ ok: false, error: { code: 'unknown_provider' } });
    expect(outcomes[3]).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(outcomes[0]?.status?.endedAt).toBe(300);
    expect(outcomes[2]?.status?.endedAt).toBe(100);
  });

  it('rejects at the first failure with failFast and cancels the rest', async () => {
    const fake = scriptedProvider('fake', [new ProviderError('auth', '401', { provider: 'fake', status: 401 })]);
    const { clock, engine } = setup({ providers: [fake], mock: { defaults: { latency: 1000 } } });
    const pending = engine.gather([ask('mock:m', 'a'), ask('fake:x', 'b'), ask('mock:m', 'c')], { failFast: true });
    const caught = pending.catch((e: unknown) => e);
    await clock.runAll();
    expect(await caught).toMatchObject({ code: 'auth' });
    expect(engine.pendingCount).toBe(0);
  });

  it('cancels every task of a gather whose signal aborts, even one aborted before it began', async () => {
    const { clock, engine, mock } = setup({ mock: { defaults: { latency: 1000 } } });
    const controller = new AbortController();
    const pending = engine.gather([ask('mock:m', 'a'), ask('mock:m', 'b')], { signal: controller.signal });
    await clock.advance(10);
    controller.abort();
    const outcomes = await pending;
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual(['cancelled', 'cancelled']);
    const aborted = AbortSignal.abort();
    const never = await engine.gather([ask('mock:m', 'c')], { signal: aborted });
    expect(never.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual(['cancelled']);
    await clock.runAll();
    expect(mock.stats().calls).toBe(2);
  });

  it('maps items to requests; an item whose mapping throws becomes a failed outcome', async () => {
    const { clock, engine } = setup();
    const pending = engine.map([1, 2, 3], (n) => {
      if (n === 2) throw new FanoutError('invalid_request', 'two is not allowed');
      return ask('mock:m', `number ${n}`, { label: `n${n}` });
    });
    await clock.runAll();
    const outcomes = await pending;
    expect(outcomes.map((o) => [o.label, o.ok])).toEqual([
      ['n1', true],
      [undefined, false],
      ['n3', true],
    ]);
  });
});

describe('events', () => {
  it('streams one task’s events and ends with its final event', async () => {
    const { clock, engine } = setup({ models: { 'mock:m': { limits: { requestsPerMinute: 1 } } } });
    engine.submit(ask('mock:m', 'a'));
    const b = engine.submit(ask('mock:m', 'b'));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of b.events()) seen.push(`${event.type}@${event.at}`);
    })();
    await clock.runAll();
    await reading;
    expect(seen).toEqual(['task-rate-limited@0', 'task-started@60000', 'task-completed@60000']);
  });

  it('the events of a task that has already ended end at once, so a loop over them finishes', async () => {
    const { clock, engine } = setup();
    const task = engine.submit(ask('mock:m', 'quick'));
    await clock.advance(0);
    await task.result();
    const seen: string[] = [];
    for await (const event of task.events()) seen.push(event.type);
    expect(seen).toEqual([]);
  });

  it('streams deltas, and an error inside the stream fails the attempt with no partial result', async () => {
    const { clock, engine, events } = setup({
      mock: {
        models: {
          ok: { timeToFirstTokenMs: 100, interTokenMs: 10, outputTokens: 5 },
          broken: { timeToFirstTokenMs: 100, interTokenMs: 10, outputTokens: 5, faults: { serverError: 1 } },
        },
      },
    });
    const ok = engine.submit(ask('mock:ok', 'hi', { stream: true }));
    const broken = engine.submit(ask('mock:broken', 'hi', { stream: true, maxAttempts: 1 }));
    await clock.runAll();
    const deltas = (id: string) =>
      events.filter((e): e is EventOf<'task-delta'> => e.type === 'task-delta' && e.taskId === id);
    expect(deltas(ok.id).map((e) => e.at)).toEqual([100, 110, 120, 130, 140]);
    const result = await ok.result();
    expect(
      deltas(ok.id)
        .map((e) => e.delta)
        .join(''),
    ).toBe(result.text);
    expect(result.usage.outputTokens).toBe(5);
    expect(deltas(broken.id).map((e) => e.at)).toEqual([100, 110]);
    expect(broken.status()).toMatchObject({ state: 'failed', result: undefined, error: { code: 'server_error' } });
  });
});

describe('input and lifecycle', () => {
  it('rejects a bad request at submit with an error naming each field', () => {
    const { engine } = setup();
    expect(() => engine.submit({ model: 'mock:m', messages: [{ role: 'user', content: 'x' }], maxTokens: -1 })).toThrow(
      /maxTokens/,
    );
    expect(() => engine.submit({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).toThrow(
      /model: expected "provider:model"/,
    );
    expect(() =>
      engine.submit({
        model: 'mock:m',
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 5,
      } as unknown as TaskRequest),
    ).toThrow(/unknown field "max_tokens"/);
    expect(engine.pendingCount).toBe(0);
  });

  it('refuses bad model settings at construction, naming the field', () => {
    expect(() => createEngine({ models: { 'mock:m': { limits: { requestsPerMinute: -3 } } } })).toThrow(
      /models\.mock:m\.limits\.requestsPerMinute/,
    );
    expect(() => createEngine({ models: { 'nope:m': {} } })).toThrow(/models\.nope:m: .*known providers: mock/);
    expect(() => createEngine({ models: { 'mock:m': { group: 'missing' } } })).toThrow(/unknown group "missing"/);
    expect(() => createEngine({ concurrency: 0 })).toThrow(/concurrency: expected a whole number ≥ 1, received 0/);
    expect(() => createEngine({ retry: { baseDelayMs: -1 } })).toThrow(
      /retry.baseDelayMs: expected a number ≥ 0, received -1/,
    );
  });

  it('close cancels what has not ended and refuses new work', async () => {
    const { clock, engine } = setup({ mock: { defaults: { latency: 1000 } } });
    const a = engine.submit(ask('mock:m'));
    await clock.advance(10);
    await engine.close();
    expect(a.status().state).toBe('cancelled');
    expect(() => engine.submit(ask('mock:m'))).toThrow(/closed/);
    await engine.close();
  });
});
