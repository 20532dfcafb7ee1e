import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import type { Provider } from '../contracts/provider.js';
import { MemoryTaskStore } from '../store/memory/memory-task-store.js';
import { MemoryCacheStore } from '../store/memory/memory-cache-store.js';
import { ManualClock } from '../contracts/manual-clock.js';
import { ProviderError } from '../contracts/errors.js';
import type { EngineEvent } from './events.js';
import type { TaskRequest } from '../contracts/types.js';
import { statusFromRow } from './task.js';

const ask = (content: string, extra: Partial<TaskRequest> = {}): TaskRequest => ({
  model: 'mock:m',
  messages: [{ role: 'user', content }],
  ...extra,
});

/** An engine on its own clock over a shared store: a second one stands for the process started after a crash. */
function processOn(store: MemoryTaskStore, startMs = 0, providers: Provider[] = []) {
  const clock = new ManualClock(startMs);
  const mock = new MockProvider({ defaults: { latency: 1000 }, models: { fast: { latency: 10 } } });
  const engine = createEngine({
    clock,
    store,
    providers: [mock, ...providers],
    random: { next: () => 0 },
    models: { 'mock:limited': { limits: { requestsPerMinute: 1, transitMs: 0 } } },
  });
  const events: EngineEvent[] = [];
  engine.on('*', (event) => events.push(event));
  return { clock, mock, engine, events };
}

describe('engine with a task store', () => {
  it('writes the changes of a few milliseconds in one go, each task as it stands', async () => {
    const store = new MemoryTaskStore();
    const writes: number[] = [];
    const write = store.write.bind(store);
    store.write = (rows, now) => {
      writes.push(rows.length);
      return write(rows, now);
    };
    const { clock, engine } = processOn(store);
    const handles = ['a', 'b', 'c'].map((c) => engine.submit(ask(c)));
    expect(writes).toEqual([]);
    await clock.advanceTo(4);
    expect(writes).toEqual([]);
    await clock.advanceTo(5);
    expect(writes).toEqual([3]);
    expect(handles.map((h) => store.get(h.id)?.state)).toEqual(['processing', 'processing', 'processing']);
    await clock.advanceTo(1004);
    expect(writes).toEqual([3]);
    await clock.advanceTo(1005);
    expect(writes).toEqual([3, 3]);
    expect(handles.map((h) => store.get(h.id)?.state)).toEqual(['completed', 'completed', 'completed']);
    expect(store.get(handles[0]!.id)?.result?.text).toBe((await handles[0]!.result()).text);
  });

  it('carries on after a crash: lost calls run again, queued tasks run, ended ones stay', async () => {
    const store = new MemoryTaskStore();
    const first = processOn(store);
    const done = first.engine.submit(ask('quick', { model: 'mock:fast' }));
    const slow = ['a', 'b'].map((c) => first.engine.submit(ask(c)));
    const limitedFirst = first.engine.submit(ask('first', { model: 'mock:limited' }));
    const waiting = first.engine.submit(ask('later', { model: 'mock:limited' }));
    await first.clock.advanceTo(500);
    expect(store.get(done.id)?.state).toBe('completed');
    expect([...slow, limitedFirst].map((h) => store.get(h.id)?.state)).toEqual([
      'processing',
      'processing',
      'processing',
    ]);
    expect(store.get(waiting.id)?.state).toBe('rate_limited');
    // The process dies here: no close, nothing more is written.

    const second = processOn(store, 600);
    expect(await second.engine.recovered).toBe(4);
    await second.clock.runAll();
    for (const h of slow) {
      expect(second.engine.status(h.id)).toMatchObject({
        state: 'completed',
        attempts: [
          { attempt: 1, startedAt: 0, endedAt: 600, outcome: 'failed', error: { code: 'network' } },
          { attempt: 2, startedAt: 600, endedAt: 1600, outcome: 'completed' },
        ],
      });
    }
    // The new process's own 1 rpm bucket: one limited task at once, the other a minute later.
    expect([limitedFirst, waiting].map((h) => second.engine.status(h.id)?.attempts.at(-1)?.startedAt)).toEqual([
      600, 60_600,
    ]);
    expect(second.engine.status(done.id)).toBeUndefined();
    expect(store.get(done.id)?.attempts).toHaveLength(1);
    expect(second.mock.stats().calls).toBe(4);
  });

  it('keeps a retry wait’s time across a restart', async () => {
    const store = new MemoryTaskStore();
    let calls = 0;
    const limited: Provider = {
      name: 'limited',
      accounting: () => ({ rule: 'anthropic' }),
      async complete(call) {
        calls += 1;
        if (calls === 1)
          throw new ProviderError('rate_limited', '429', {
            provider: 'limited',
            status: 429,
            retryAfterMs: 10_000,
            retryable: true,
          });
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
    const first = processOn(store, 0, [limited]);
    const task = first.engine.submit(ask('x', { model: 'limited:m' }));
    await first.clock.advance(0);
    await first.engine.flush();
    expect(store.get(task.id)).toMatchObject({ state: 'rate_limited', readyAt: 10_000 });

    const second = processOn(store, 2000, [limited]);
    await second.engine.recovered;
    await second.clock.advanceTo(9999);
    expect(second.engine.status(task.id)).toMatchObject({ state: 'rate_limited', eta: 10_000 });
    await second.clock.advanceTo(10_000);
    expect(second.engine.status(task.id)?.state).toBe('completed');
    expect(calls).toBe(2);
  });

  it('leaves unfinished tasks in the store on close, for the next engine', async () => {
    const store = new MemoryTaskStore();
    const first = processOn(store);
    const handles = ['a', 'b'].map((c) => first.engine.submit(ask(c)));
    await first.clock.advance(100);
    await first.engine.close();
    expect(handles.map((h) => h.status().state)).toEqual(['cancelled', 'cancelled']);
    expect(handles.map((h) => store.get(h.id)?.state)).toEqual(['processing', 'processing']);
    const second = processOn(store, 200);
    expect(await second.engine.recovered).toBe(2);
    await second.clock.runAll();
    expect(handles.map((h) => store.get(h.id)?.state)).toEqual(['completed', 'completed']);
  });

  it('never lets a task complete twice: a stale process’s result is refused and reported', async () => {
    const store = new MemoryTaskStore();
    const stale = processOn(store);
    const task = stale.engine.submit(ask('x', { attemptTimeoutMs: 1500 }));
    await stale.clock.advanceTo(100);
    // A second process takes over once the stale one's lease (1,500 ms) has run out.
    const fresh = processOn(store, 1700);
    await fresh.engine.recovered;
    await fresh.clock.runAll();
    expect(store.get(task.id)?.attempts.map((a) => a.attempt)).toEqual([1, 2]);
    // The stale process's call ends now; its result must not replace the stored one.
    await stale.clock.advanceTo(1100);
    await stale.engine.flush();
    expect(stale.events.filter((e) => e.type === 'store-conflict')).toHaveLength(1);
    expect(store.get(task.id)?.attempts.map((a) => a.attempt)).toEqual([1, 2]);
  });
});

describe('a task’s status, live and as stored', () => {
  it('is the same from the engine and from the store’s row, for every way a task ends or waits', async () => {
    const store = new MemoryTaskStore();
    const refusing: Provider = {
      name: 'refusing',
      accounting: () => ({ rule: 'openai' }),
      complete: () =>
        Promise.reject(
          new ProviderError('bad_request', 'refusing: bad request (400)', {
            provider: 'refusing',
            status: 400,
            retryable: false,
          }),
        ),
      stream: () => {
        throw new Error('not used');
      },
    };
    const { clock, engine } = processOn(store, 0, [refusing]);
    const completed = engine.submit(ask('done', { model: 'mock:fast', label: 'a label' }));
    const failed = engine.submit(ask('refused', { model: 'refusing:m' }));
    const first = engine.submit(ask('first', { model: 'mock:limited' }));
    const waiting = engine.submit(ask('waits', { model: 'mock:limited' }));
    const cancelled = engine.submit(ask('cancelled', { model: 'mock:m' }));
    await clock.advance(5);
    cancelled.cancel();
    await clock.advance(100);
    await engine.flush();
    expect([completed, failed, first, waiting, cancelled].map((h) => h.status().state)).toEqual([
      'completed',
      'failed',
      'processing',
      'rate_limited',
      'cancelled',
    ]);
    for (const handle of [completed, failed, waiting, cancelled]) {
      const row = store.get(handle.id);
      if (!row) throw new Error(`no row for ${handle.id}`);
      const live = handle.status();
      // The stored row knows a waiting task's time so far only up to its last change, and not the engine's
      // estimate of when a limit lets it go (a restarted engine makes its own); all else is the same.
      const stored = statusFromRow(row);
      expect(stored).toEqual(live.endedAt === undefined ? { ...live, timing: stored.timing, eta: undefined } : live);
    }
    await engine.close();
  });

  it('answers a task adopted from the store through the result cache, and fills the cache with its answer', async () => {
    const store = new MemoryTaskStore();
    const cache = new MemoryCacheStore();
    const worker = () => {
      const clock = new ManualClock(0);
      const mock = new MockProvider({ defaults: { latency: 10 } });
      const engine = createEngine({ clock, store, cache: { store: cache }, providers: [mock], resume: false });
      return { clock, mock, engine };
    };
    const row = (id: string, content: string) => ({
      id,
      seq: 1,
      key: 'mock:m',
      request: ask(content, { temperature: 0 }),
      state: 'queued' as const,
      submittedAt: 0,
      readyAt: 0,
      attempts: [],
      queuedMs: 0,
      rateLimitedMs: 0,
      providerMs: 0,
    });
    const first = worker();
    const [led] = first.engine.adopt([row('t_a', 'same question')]);
    await first.clock.runAll();
    const answer = await led!.result();
    expect(first.mock.stats('m').calls).toBe(1);
    expect(answer.cache).toBeUndefined();
    // Another process adopts a task asking the same: answered from the cache, no call.
    const second = worker();
    const [followed] = second.engine.adopt([row('t_b', 'same question')]);
    await second.clock.runAll();
    const cached = await followed!.result();
    expect(second.mock.stats('m').calls).toBe(0);
    expect(cached).toMatchObject({ text: answer.text, cache: { source: 'stored' } });
  });
});
