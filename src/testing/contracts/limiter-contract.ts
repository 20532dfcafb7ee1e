import { afterEach, describe, expect, it } from 'vitest';
import { FanoutError } from '../../contracts/errors.js';
import type { Cost, Limiter, ReserveResult } from '../../contracts/limiter.js';

const cost = (tokens: number, outputTokens = 0, inputTokens = tokens - outputTokens): Cost => ({
  requests: 1,
  tokens,
  inputTokens,
  outputTokens,
});

/**
 * `limiter.reserve`, and for a shared limiter that was still fetching its
 * share (`whenIdle`), the answer once it has: a shared limiter must then
 * answer exactly as an in-process one.
 */
async function reserve(limiter: Limiter, key: string, amount: Cost, now: number): Promise<ReserveResult> {
  const first = limiter.reserve(key, amount, now);
  if (first.granted || !limiter.whenIdle) return first;
  await limiter.whenIdle();
  return limiter.reserve(key, amount, now);
}

/**
 * The behaviour every `Limiter` must show, with exact waits and levels: run
 * it against an implementation (`limiterContract('mine', () => new MyLimiter())`
 * inside a Vitest file). Times are passed in, so no clock is needed. A
 * limiter with a `close()` is closed after each case.
 */
export function limiterContract(name: string, makeLimiter: () => Limiter): void {
  describe(`Limiter contract: ${name}`, () => {
    const made: Limiter[] = [];
    const make = (): Limiter => {
      const limiter = makeLimiter();
      made.push(limiter);
      return limiter;
    };
    afterEach(async () => {
      for (const limiter of made.splice(0)) await (limiter as { close?: () => Promise<void> | void }).close?.();
    });
    bucketCases(make);
    settlementCases(make);
    learningCases(make);
    adaptiveCases(make);
  });
}

/** The contract, continued: buckets, bursts and all-or-nothing admission. */
function bucketCases(makeLimiter: () => Limiter): void {
  it('admits 60 at once on a 60 rpm key, then one every 1,000 ms', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 60, transitMs: 0 }, 0);
    for (let i = 0; i < 60; i++) expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toEqual({
      granted: false,
      waitMs: 1000,
      reason: 'requestsPerMinute',
    });
    expect((await reserve(limiter, 'k', cost(0), 1000)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 1000)).toEqual({
      granted: false,
      waitMs: 1000,
      reason: 'requestsPerMinute',
    });
  });

  it('floors times to whole milliseconds', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 60, burstSeconds: 1, transitMs: 0 }, 0.7);
    expect((await reserve(limiter, 'k', cost(0), 0.9)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 999.99)).toEqual({
      granted: false,
      waitMs: 1,
      reason: 'requestsPerMinute',
    });
    expect((await reserve(limiter, 'k', cost(0), 1000.2)).granted).toBe(true);
  });

  it('narrows the burst with burstSeconds', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 60, burstSeconds: 1 }, 0);
    expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toMatchObject({ granted: false, waitMs: 1000 });
  });

  it('takes every dimension or none, and reports the one that binds longest', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 100, tokensPerMinute: 1000, transitMs: 0 }, 0);
    expect((await reserve(limiter, 'k', cost(900), 0)).granted).toBe(true);
    const refused = await reserve(limiter, 'k', cost(200), 0);
    expect(refused).toEqual({ granted: false, waitMs: 6000, reason: 'tokensPerMinute' });
    // The refused call took no request permit: 99 more requests of 0 tokens still fit.
    for (let i = 0; i < 99; i++) expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(false);
  });
}

/** The contract, continued: settlement, concurrency, cooldowns and sizes. */
function settlementCases(makeLimiter: () => Limiter): void {
  it('refunds to the real usage on settle, and debits usage above the reservation', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { outputTokensPerMinute: 1000, transitMs: 0 }, 0);
    const first = await reserve(limiter, 'k', cost(500, 500), 0);
    const second = await reserve(limiter, 'k', cost(500, 500), 0);
    if (!first.granted || !second.granted) throw new Error('expected grants');
    expect(await reserve(limiter, 'k', cost(500, 500), 0)).toMatchObject({ granted: false, waitMs: 30_000 });
    limiter.settle(first, 0, cost(100, 100));
    expect((await reserve(limiter, 'k', cost(400, 400), 0)).granted).toBe(true);
    limiter.settle(second, 0, cost(560, 560));
    expect(limiter.stats('k')?.charged.outputTokens).toBe(100 + 560 + 400);
    expect(await reserve(limiter, 'k', cost(1, 1), 0)).toMatchObject({ granted: false, waitMs: 3660 });
  });

  it('settles once: a second settle changes nothing', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { tokensPerMinute: 1000, maxConcurrent: 1 }, 0);
    const permit = await reserve(limiter, 'k', cost(1000), 0);
    if (!permit.granted) throw new Error('expected a grant');
    limiter.settle(permit, 0, cost(100));
    limiter.settle(permit, 0, cost(0));
    expect(limiter.stats('k')).toMatchObject({ inFlight: 0, charged: { tokens: 100 } });
  });

  it('holds calls beyond maxConcurrent until one ends', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { maxConcurrent: 2 }, 0);
    const a = await reserve(limiter, 'k', cost(0), 0);
    await reserve(limiter, 'k', cost(0), 0);
    expect(await reserve(limiter, 'k', cost(0), 0)).toEqual({
      granted: false,
      waitMs: Number.POSITIVE_INFINITY,
      reason: 'concurrency',
    });
    if (!a.granted) throw new Error('expected a grant');
    limiter.settle(a, 5);
    expect((await reserve(limiter, 'k', cost(0), 5)).granted).toBe(true);
  });

  it('stops the whole key during a cooldown, and a shorter cooldown never shortens it', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 1000 }, 0);
    limiter.cooldown('k', 2500, 0);
    limiter.cooldown('k', 1000, 0);
    expect(await reserve(limiter, 'k', cost(0), 100)).toEqual({ granted: false, waitMs: 2400, reason: 'cooldown' });
    expect((await reserve(limiter, 'k', cost(0), 2500)).granted).toBe(true);
  });

  it('fails a request larger than a whole window at once, naming the limit', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { tokensPerMinute: 1000 }, 0);
    try {
      await reserve(limiter, 'k', cost(1500), 0);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FanoutError);
      expect((error as FanoutError).code).toBe('request_too_large');
      expect((error as FanoutError).retryable).toBe(false);
      expect((error as Error).message).toContain('tokensPerMinute');
      expect((error as Error).message).toContain('1000');
    }
  });

  it('keeps per-day request buckets full-sized whatever the burst', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerDay: 100, burstSeconds: 1, transitMs: 0 }, 0);
    for (let i = 0; i < 100; i++) expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toEqual({
      granted: false,
      waitMs: 864_000,
      reason: 'requestsPerDay',
    });
  });

  it('treats an undefined key as unlimited', async () => {
    const limiter = makeLimiter();
    for (let i = 0; i < 1000; i++) expect((await reserve(limiter, 'free', cost(1e9), 0)).granted).toBe(true);
  });
}

/** The contract, continued: what providers' headers say. */
function learningCases(makeLimiter: () => Limiter): void {
  it('brings a configured bucket down to what the provider says remains, never up', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 60, transitMs: 0 }, 0);
    limiter.observe('k', [{ dimension: 'requestsPerMinute', limit: 60, remaining: 2 }], 0);
    expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toMatchObject({ granted: false, waitMs: 1000 });
    limiter.observe('k', [{ dimension: 'requestsPerMinute', limit: 60, remaining: 50 }], 0);
    expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(false);
  });

  it('learns a limit it was not told: the stated rate, the provider’s burst, starting at what remains', async () => {
    const limiter = makeLimiter();
    // 600 per minute (10 per second); 4 remain and the bucket is full again in 1.6 s: it holds 4 + 16 = 20.
    limiter.observe('k', [{ dimension: 'requestsPerMinute', limit: 600, remaining: 4, resetMs: 1600 }], 0);
    expect(limiter.buckets('k')).toEqual([
      { name: 'requestsPerMinute', limit: 600, windowMs: 60_000, capacity: 20, charged: 0 },
    ]);
    for (let i = 0; i < 4; i++) expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toMatchObject({ granted: false, reason: 'requestsPerMinute' });
    expect(limiter.buckets('k')[0]?.charged).toBe(4);
  });

  it('never refunds into a learned bucket what a call admitted before it took from elsewhere', async () => {
    const limiter = makeLimiter();
    const early = await reserve(limiter, 'k', { requests: 1, tokens: 500, inputTokens: 0, outputTokens: 500 }, 0);
    if (!early.granted) throw new Error('expected a permit');
    // The answer says 1,000 tokens a minute, 400 left (the provider counted this call at its use): a bucket at 400.
    expect(
      limiter.observe('k', [{ dimension: 'tokensPerMinute', limit: 1_000, remaining: 400, resetMs: 36_000 }], 0),
    ).toBe(true);
    limiter.settle(early, 0, { requests: 1, tokens: 20, inputTokens: 0, outputTokens: 20 });
    expect(limiter.levels('k', 0)).toMatchObject([{ name: 'tokensPerMinute', remaining: 400 }]);
    expect(limiter.buckets('k')[0]?.charged).toBe(0);
    // A second answer saying the same of a known dimension teaches nothing new.
    expect(
      limiter.observe('k', [{ dimension: 'tokensPerMinute', limit: 1_000, remaining: 400, resetMs: 36_000 }], 0),
    ).toBe(false);
  });
}

/** The contract, continued: refusals, probing and reports. */
function adaptiveCases(makeLimiter: () => Limiter): void {
  it('halves the calls in flight after a refusal and adds one per window of successes', async () => {
    const limiter = makeLimiter();
    const permits = [];
    for (let i = 0; i < 8; i++) permits.push(await reserve(limiter, 'k', cost(0), 0));
    limiter.backOff('k', 0);
    expect(limiter.adaptiveLimit('k')).toBe(4);
    for (const permit of permits) if (permit.granted) limiter.settle(permit, 0);
    for (let i = 0; i < 4; i++) expect((await reserve(limiter, 'k', cost(0), 0)).granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toMatchObject({ granted: false, reason: 'concurrency' });
    for (let i = 0; i < 4; i++) limiter.succeeded('k');
    expect(limiter.adaptiveLimit('k')).toBe(5);
    limiter.backOff('k', 0);
    expect(limiter.adaptiveLimit('k')).toBe(2);
  });

  it('admits one call at a time on a probed key until the first answer, and a stopped probe allows the number given', async () => {
    const limiter = makeLimiter();
    limiter.probe('k', 0);
    expect(limiter.isProbing('k')).toBe(true);
    const first = await reserve(limiter, 'k', cost(0), 0);
    expect(first.granted).toBe(true);
    expect(await reserve(limiter, 'k', cost(0), 0)).toEqual({
      granted: false,
      waitMs: Number.POSITIVE_INFINITY,
      reason: 'concurrency',
    });
    expect(limiter.stopProbing('k', 3)).toBe(true);
    expect(limiter.stopProbing('k', 3)).toBe(false);
    expect([
      (await reserve(limiter, 'k', cost(0), 0)).granted,
      (await reserve(limiter, 'k', cost(0), 0)).granted,
      (await reserve(limiter, 'k', cost(0), 0)).granted,
    ]).toEqual([true, true, false]);
    expect(limiter.adaptiveLimit('k')).toBe(3);
  });

  it('reports each bucket, its level and what was charged, after settlement', async () => {
    const limiter = makeLimiter();
    limiter.define('k', { requestsPerMinute: 60, tokensPerMinute: 6000, transitMs: 0 }, 0);
    const permit = await reserve(limiter, 'k', cost(3000), 0);
    if (!permit.granted) throw new Error('expected a grant');
    limiter.settle(permit, 0, cost(1200));
    expect(limiter.has('k')).toBe(true);
    expect(limiter.keyNames()).toEqual(['k']);
    expect(limiter.stats('k')).toEqual({
      charged: { requests: 1, tokens: 1200, inputTokens: 1200, outputTokens: 0 },
      inFlight: 0,
      cooldownUntil: 0,
    });
    expect(limiter.buckets('k')).toEqual([
      { name: 'requestsPerMinute', limit: 60, windowMs: 60_000, capacity: 60, charged: 1 },
      { name: 'tokensPerMinute', limit: 6000, windowMs: 60_000, capacity: 6000, charged: 1200 },
    ]);
    expect(limiter.levels('k', 6000)).toEqual([
      { name: 'requestsPerMinute', limit: 60, capacity: 60, remaining: 60, resetMs: 0 },
      { name: 'tokensPerMinute', limit: 6000, capacity: 6000, remaining: 5400, resetMs: 6000 },
    ]);
    expect(limiter.maxConcurrent('k')).toBe(Number.POSITIVE_INFINITY);
  });
}
