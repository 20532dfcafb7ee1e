import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ManualClock } from '../../contracts/manual-clock.js';
import type { TaskRequest } from '../../contracts/types.js';
import { createEngine } from '../../create-engine.js';
import { MockProvider } from '../../providers/mock/mock-provider.js';
import { RedisTaskStore } from './redis-task-store.js';

const ask = (content: string, extra: Partial<TaskRequest> = {}): TaskRequest => ({
  model: 'mock:m',
  messages: [{ role: 'user', content }],
  ...extra,
});

/** Engines on their own clocks over one Redis store: a second one stands for the process started after a crash. */
describe('engines on a Redis task store', () => {
  const stores: RedisTaskStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });
  const storeOn = (prefix: string) => {
    const store = new RedisTaskStore({ url: inject('redisUrl'), prefix });
    stores.push(store);
    return store;
  };
  const processOn = (prefix: string, startMs = 0) => {
    const clock = new ManualClock(startMs);
    const mock = new MockProvider({ defaults: { latency: 1000 }, models: { fast: { latency: 10 } } });
    const engine = createEngine({ clock, store: storeOn(prefix), providers: [mock], random: { next: () => 0 } });
    return { clock, mock, engine };
  };

  it('carries on after a crash: lost calls run again, ended ones stay', async () => {
    const prefix = `test-${randomUUID()}:`;
    const first = processOn(prefix);
    const done = first.engine.submit(ask('quick', { model: 'mock:fast' }));
    const slow = ['a', 'b'].map((c) => first.engine.submit(ask(c)));
    await first.clock.advanceTo(500);
    await first.engine.flush();
    // The process dies here: no close, nothing more is written.

    const second = processOn(prefix, 600);
    expect(await second.engine.recovered).toBe(2);
    await second.clock.runAll();
    await second.engine.flush();
    const reader = storeOn(prefix);
    for (const h of slow) {
      expect(await reader.get(h.id)).toMatchObject({
        state: 'completed',
        attempts: [
          { attempt: 1, startedAt: 0, endedAt: 600, outcome: 'failed', error: { code: 'network' } },
          { attempt: 2, startedAt: 600, endedAt: 1600, outcome: 'completed' },
        ],
      });
    }
    expect((await reader.get(done.id))?.attempts).toHaveLength(1);
    expect(second.mock.stats().calls).toBe(2);
  });

  it('never lets a task complete twice: a stale process’s result is refused and reported', async () => {
    const prefix = `test-${randomUUID()}:`;
    const stale = processOn(prefix);
    const conflicts: unknown[] = [];
    stale.engine.on('store-conflict', (event) => conflicts.push(event));
    const task = stale.engine.submit(ask('x', { attemptTimeoutMs: 1500 }));
    await stale.clock.advanceTo(100);
    await stale.engine.flush();
    // A second process takes over once the stale one's lease (1,500 ms) has run out.
    const fresh = processOn(prefix, 1700);
    await fresh.engine.recovered;
    await fresh.clock.runAll();
    await fresh.engine.flush();
    const reader = storeOn(prefix);
    expect((await reader.get(task.id))?.attempts.map((a) => a.attempt)).toEqual([1, 2]);
    // The stale process's call ends now; its result must not replace the stored one.
    await stale.clock.advanceTo(1100);
    await stale.engine.flush();
    expect(conflicts).toHaveLength(1);
    expect((await reader.get(task.id))?.attempts.map((a) => a.attempt)).toEqual([1, 2]);
  });
});
