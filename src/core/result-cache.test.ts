import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import type { EngineOptions } from './engine.js';
import { ProviderError } from '../contracts/errors.js';
import type { EngineEvent } from './events.js';
import type { TaskRequest } from '../contracts/types.js';
import { MockProvider, type MockProviderOptions } from '../providers/mock/mock-provider.js';
import type { Provider } from '../contracts/provider.js';
import { MemoryCacheStore } from '../store/memory/memory-cache-store.js';
import { ManualClock } from '../contracts/manual-clock.js';
import type { CacheStore } from '../contracts/cache-store.js';

function setup(options: Omit<EngineOptions, 'clock'> & { mock?: MockProviderOptions } = {}) {
  const clock = new ManualClock();
  const mock = new MockProvider(options.mock ?? { defaults: { latency: 1000 } });
  const extra = Array.isArray(options.providers) ? options.providers : [];
  const engine = createEngine({ random: { next: () => 0 }, ...options, clock, providers: [mock, ...extra] });
  const events: EngineEvent[] = [];
  engine.on('*', (event) => events.push(event));
  return { clock, mock, engine, events };
}

const ask = (extra: Partial<TaskRequest> = {}): TaskRequest => ({
  model: 'mock:m',
  messages: [{ role: 'user', content: 'review the diff' }],
  temperature: 0,
  ...extra,
});

describe('result cache', () => {
  it('answers a repeated temperature-0 request from the cache: no call, no limit spent, age given', async () => {
    const { clock, engine, mock } = setup({ models: { 'mock:m': { limits: { requestsPerMinute: 1 } } } });
    const first = engine.submit(ask());
    await clock.runAll();
    const original = await first.result();
    await clock.advanceTo(5000);
    const second = engine.submit(ask({ label: 'again', priority: 3 }));
    expect(second.status()).toMatchObject({ state: 'completed', attempts: [], endedAt: 5000 });
    expect(await second.result()).toEqual({ ...original, cache: { source: 'stored', ageMs: 4000 } });
    expect(mock.stats().calls).toBe(1);
    expect(engine.limiter.stats('mock:m')?.charged.requests).toBe(1);
  });

  it('leaves requests at the provider’s default temperature, and opted-out ones, uncached', async () => {
    const { clock, engine, mock } = setup({ mock: {} });
    for (let i = 0; i < 2; i++) engine.submit(ask({ temperature: undefined }));
    for (let i = 0; i < 2; i++) engine.submit(ask({ cache: false }));
    await clock.runAll();
    expect(mock.stats().calls).toBe(4);
  });

  it('caches a request with temperature above 0 when it opts in', async () => {
    const { clock, engine, mock } = setup({ mock: {} });
    engine.submit(ask({ temperature: 0.8, cache: true }));
    await clock.runAll();
    const again = engine.submit(ask({ temperature: 0.8, cache: true }));
    await clock.runAll();
    expect((await again.result()).cache?.source).toBe('stored');
    expect(mock.stats().calls).toBe(1);
  });

  it('keeps an answer for the request’s TTL, else the model’s, else the engine’s', async () => {
    const { clock, engine, mock } = setup({
      mock: {},
      cache: { ttlMs: 10_000 },
      models: { 'mock:short': { cacheTtlMs: 2000 } },
    });
    engine.submit(ask({ cache: { ttlMs: 500 } }));
    engine.submit(ask({ model: 'mock:short' }));
    engine.submit(ask({ model: 'mock:long' }));
    await clock.runAll();
    const repeat = () =>
      [ask({ cache: { ttlMs: 500 } }), ask({ model: 'mock:short' }), ask({ model: 'mock:long' })].map(
        (r) => engine.submit(r).status().state,
      );
    await clock.advanceTo(499);
    expect(repeat()).toEqual(['completed', 'completed', 'completed']);
    await clock.advanceTo(500);
    expect(repeat()).toEqual(['queued', 'completed', 'completed']);
    await clock.runAll();
    await clock.advanceTo(1999);
    expect(repeat()).toEqual(['queued', 'completed', 'completed']);
    await clock.runAll();
    await clock.advanceTo(10_000);
    expect(repeat()).toEqual(['queued', 'queued', 'queued']);
    await clock.runAll();
    expect(mock.stats().calls).toBe(3 + 1 + 1 + 3);
  });

  it('never shares an answer between tenants', async () => {
    const { clock, engine, mock } = setup({ mock: {} });
    engine.submit(ask({ tenant: 'acme' }));
    await clock.runAll();
    const other = engine.submit(ask({ tenant: 'globex' }));
    await clock.runAll();
    expect((await other.result()).cache).toBeUndefined();
    expect(mock.stats().calls).toBe(2);
  });

  it('is off with cache: false', async () => {
    const { clock, engine, mock } = setup({ mock: {}, cache: false });
    engine.submit(ask());
    await clock.runAll();
    engine.submit(ask());
    await clock.runAll();
    expect(mock.stats().calls).toBe(2);
  });

  it('treats a failing store as a miss and says so', async () => {
    const broken: CacheStore = {
      get: () => {
        throw new Error('disk I/O error');
      },
      set: () => {
        throw new Error('disk I/O error');
      },
      delete: () => undefined,
      clearTenant: () => 0,
      close: () => undefined,
    };
    const { clock, engine, events } = setup({ mock: {}, cache: { store: broken } });
    const handle = engine.submit(ask());
    await clock.runAll();
    expect(handle.status().state).toBe('completed');
    expect(events.filter((e) => e.type === 'cache-error').map((e) => e.error?.message)).toEqual([
      'disk I/O error',
      'disk I/O error',
    ]);
  });

  it('waits for a store that answers later before deciding', async () => {
    const memory = new MemoryCacheStore();
    const slow: CacheStore = {
      get: (key, now) => Promise.resolve(memory.get(key, now)),
      set: (key, entry) => Promise.resolve(memory.set(key, entry)),
      delete: (key) => memory.delete(key),
      clearTenant: (tenant) => memory.clearTenant(tenant),
      close: () => memory.close(),
    };
    const { clock, engine, mock } = setup({ mock: {}, cache: { store: slow } });
    const first = engine.submit(ask());
    expect(first.status().state).toBe('submitted');
    await clock.runAll();
    const second = engine.submit(ask());
    await clock.runAll();
    expect(second.status().state).toBe('completed');
    expect(mock.stats().calls).toBe(1);
  });
});

describe('single-flight', () => {
  it('shares one call among identical requests in flight, each keeping its own id', async () => {
    const { clock, engine, mock } = setup();
    const handles = [engine.submit(ask()), engine.submit(ask({ label: 'b' })), engine.submit(ask({ label: 'c' }))];
    expect(new Set(handles.map((h) => h.id)).size).toBe(3);
    await clock.advanceTo(999);
    expect(handles.map((h) => h.status().state)).toEqual(['processing', 'queued', 'queued']);
    await clock.advanceTo(1000);
    expect(handles.map((h) => h.status().state)).toEqual(['completed', 'completed', 'completed']);
    const results = await Promise.all(handles.map((h) => h.result()));
    expect(results.map((r) => r.cache?.source)).toEqual([undefined, 'in-flight', 'in-flight']);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(mock.stats().calls).toBe(1);
    expect(handles[1]?.status().timing).toMatchObject({ queuedMs: 1000, providerMs: 0 });
  });

  it('does not share a failure: the waiting tasks make their own call', async () => {
    const calls: number[] = [];
    const flaky: Provider = {
      name: 'flaky',
      accounting: () => ({ rule: 'anthropic' }),
      async complete(call, context) {
        calls.push(context.clock.now());
        await context.clock.sleep(100, context.signal);
        if (calls.length === 1) throw new ProviderError('auth', '401 bad key', { provider: 'flaky', status: 401 });
        return {
          text: 'fine',
          usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
          finishReason: 'stop',
          model: call.model,
        };
      },
      stream() {
        throw new Error('not used');
      },
    };
    const { clock, engine } = setup({ providers: [flaky] });
    const handles = [0, 1, 2].map(() => engine.submit(ask({ model: 'flaky:m' })));
    await clock.runAll();
    expect(calls).toEqual([0, 100]);
    expect(handles.map((h) => h.status().state)).toEqual(['failed', 'completed', 'completed']);
    expect((await handles[2]!.result()).cache?.source).toBe('in-flight');
  });

  it('lets the waiting tasks go on when the leader is cancelled, and a cancelled follower leaves the rest alone', async () => {
    const { clock, engine, mock } = setup();
    const [leader, follower, other] = [engine.submit(ask()), engine.submit(ask()), engine.submit(ask())];
    await clock.advanceTo(100);
    other!.cancel();
    leader!.cancel();
    await clock.runAll();
    expect([leader, follower, other].map((h) => h!.status().state)).toEqual(['cancelled', 'completed', 'cancelled']);
    expect(follower!.status().attempts.map((a) => a.startedAt)).toEqual([100]);
    expect(mock.stats()).toMatchObject({ calls: 2, completed: 1, cancelled: 1 });
  });
});
