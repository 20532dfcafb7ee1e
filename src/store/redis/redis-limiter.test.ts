import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import type { Cost, Limiter, ReserveResult } from '../../contracts/limiter.js';
import { limiterContract } from '../../testing/contracts/index.js';
import { RedisLimiter } from './redis-limiter.js';

// One call per round trip, on the times the cases pass in: the shared budget must answer exactly as memory does.
limiterContract(
  'redis',
  () => new RedisLimiter({ url: inject('redisUrl'), prefix: `test-${randomUUID()}:`, time: 'caller', holdMs: 0 }),
);

const call: Cost = { requests: 1, tokens: 0, inputTokens: 0, outputTokens: 0 };

/** `reserve`, and once the limiter's round trips are answered, `reserve` again if it was held back. */
async function reserve(limiter: Limiter, key: string, now: number): Promise<ReserveResult> {
  const first = limiter.reserve(key, call, now);
  if (first.granted) return first;
  await limiter.whenIdle?.();
  return limiter.reserve(key, call, now);
}

describe('a Redis limiter whose Redis lost its keys', () => {
  it('defines its limits again, rather than spend without limit', async () => {
    const prefix = `test-${randomUUID()}:`;
    const limiter = new RedisLimiter({ url: inject('redisUrl'), prefix, time: 'caller', holdMs: 0 });
    const redis = new Redis(inject('redisUrl'));
    try {
      limiter.define('k', { requestsPerMinute: 60, transitMs: 0 }, 0);
      expect((await reserve(limiter, 'k', 0)).granted).toBe(true);
      // A restart without persistence, a flush or an eviction: the key's buckets are gone.
      await redis.del(`${prefix}limit:k`);
      let granted = 0;
      for (let i = 0; i < 100; i++) if ((await reserve(limiter, 'k', 0)).granted) granted += 1;
      // The bucket starts over full (what was spent before the loss is not known): 60, never 100.
      expect(granted).toBe(60);
      expect(await redis.hget(`${prefix}limit:k`, 'requestsPerMinute.limit')).toBe('60');
    } finally {
      await limiter.close();
      await redis.quit();
    }
  });
});

describe('processes on one Redis limiter', () => {
  const made: RedisLimiter[] = [];
  afterEach(async () => {
    for (const limiter of made.splice(0)) await limiter.close();
  });
  /** Two limiters as two processes would have them: one Redis, one prefix, the same times passed in. */
  const pair = (): [RedisLimiter, RedisLimiter] => {
    const prefix = `test-${randomUUID()}:`;
    const make = () => new RedisLimiter({ url: inject('redisUrl'), prefix, time: 'caller', holdMs: 1000 });
    const both: [RedisLimiter, RedisLimiter] = [make(), make()];
    made.push(...both);
    return both;
  };

  it('stops every process at once when one is told to wait, and drops the slices they hold', async () => {
    const [a, b] = pair();
    a.define('k', { requestsPerMinute: 600 }, 0);
    b.define('k', { requestsPerMinute: 600 }, 0);
    await Promise.all([a.whenIdle(), b.whenIdle()]);
    expect((await reserve(b, 'k', 0)).granted).toBe(true);
    a.cooldown('k', 5000, 0);
    await vi.waitFor(() => expect(b.stats('k')?.cooldownUntil).toBe(5000));
    expect(b.reserve('k', call, 100)).toEqual({ granted: false, waitMs: 4900, reason: 'cooldown' });
    // What b held was dropped, not given back: after the cooldown it leases again.
    const trips = b.roundTrips();
    expect((await reserve(b, 'k', 5000)).granted).toBe(true);
    expect(b.roundTrips()).toBeGreaterThan(trips);
  });

  it('gives every process the limits one of them learned from a provider’s headers', async () => {
    const [a, b] = pair();
    b.define('k', {}, 0);
    await b.whenIdle();
    a.observe('k', [{ dimension: 'requestsPerMinute', limit: 600, remaining: 4, resetMs: 1600 }], 0);
    await vi.waitFor(() =>
      expect(b.buckets('k')).toEqual([
        { name: 'requestsPerMinute', limit: 600, windowMs: 60_000, capacity: 20, charged: 0 },
      ]),
    );
    // The four that remain are shared: b takes them, then a is refused.
    for (let i = 0; i < 4; i++) expect((await reserve(b, 'k', 0)).granted).toBe(true);
    expect(await reserve(a, 'k', 0)).toMatchObject({ granted: false, reason: 'requestsPerMinute' });
  });

  it('counts calls in flight across processes, and hands a freed slot to the process waiting for it', async () => {
    const [a, b] = pair();
    a.define('k', { maxConcurrent: 1 }, 0);
    b.define('k', { maxConcurrent: 1 }, 0);
    const held = await reserve(a, 'k', 0);
    if (!held.granted) throw new Error('expected a grant');
    expect(await reserve(b, 'k', 0)).toEqual({
      granted: false,
      waitMs: Number.POSITIVE_INFINITY,
      reason: 'concurrency',
    });
    const woken = new Promise<string>((resolve) => b.onChange(resolve));
    a.settle(held, 10);
    expect(await woken).toBe('k');
    await vi.waitFor(async () => expect((await reserve(b, 'k', 10)).granted).toBe(true));
    expect(await reserve(a, 'k', 10)).toMatchObject({ granted: false, reason: 'concurrency' });
  });
});
