import { describe, expect, it } from 'vitest';
import { exceedsLimit, fullBucket, give, refill, take, waitTime, type BucketSpec } from './token-bucket.js';

const perMinute = (limit: number, capacity = limit): BucketSpec => ({ limit, windowMs: 60_000, capacity });

describe('token bucket', () => {
  it('refills exactly one request per 1,000 ms at 60 per minute', () => {
    const spec = perMinute(60);
    const empty = { tokens: 0, updatedAt: 0 };
    expect(refill(spec, empty, 1000).tokens).toBe(1);
    expect(refill(spec, empty, 250).tokens).toBe(0.25);
    expect(waitTime(spec, empty, 0, 1)).toBe(1000);
    expect(waitTime(spec, { tokens: 0.25, updatedAt: 0 }, 0, 1)).toBe(750);
  });

  it('carries fractional tokens instead of dropping them', () => {
    const spec = perMinute(7);
    let state = { tokens: 0, updatedAt: 0 };
    for (let t = 1; t <= 60; t++) state = refill(spec, state, t * 1000);
    expect(state.tokens).toBeCloseTo(7, 12);
  });

  it('never holds more than its capacity', () => {
    const spec = perMinute(60, 10);
    expect(refill(spec, { tokens: 0, updatedAt: 0 }, 3_600_000).tokens).toBe(10);
    expect(give(spec, fullBucket(spec, 0), 0, 5).tokens).toBe(10);
  });

  it('takes all of a cost or none of it', () => {
    const spec = perMinute(60);
    const granted = take(spec, { tokens: 5, updatedAt: 0 }, 0, 5);
    expect(granted).toEqual({ state: { tokens: 0, updatedAt: 0 }, waitMs: 0 });
    const refused = take(spec, { tokens: 4, updatedAt: 0 }, 0, 5);
    expect(refused).toEqual({ state: { tokens: 4, updatedAt: 0 }, waitMs: 1000 });
  });

  it('admits a cost above capacity only from a full bucket, leaving debt', () => {
    const spec = perMinute(60_000, 1000);
    const full = fullBucket(spec, 0);
    const big = take(spec, full, 0, 3000);
    expect(big).toEqual({ state: { tokens: -2000, updatedAt: 0 }, waitMs: 0 });
    // The debt refills at 1,000 per second: a small request waits 2,001 ms.
    expect(waitTime(spec, big.state, 0, 1)).toBe(2001);
    // Another big one needs the bucket full again: 3,000 ms.
    expect(waitTime(spec, big.state, 0, 3000)).toBe(3000);
  });

  it('rounds waits up to whole milliseconds so a timer always finds the tokens', () => {
    const spec = perMinute(7);
    const wait = waitTime(spec, { tokens: 0, updatedAt: 0 }, 0, 1);
    expect(wait).toBe(8572);
    expect(take(spec, { tokens: 0, updatedAt: 0 }, wait, 1).waitMs).toBe(0);
    expect(take(spec, { tokens: 0, updatedAt: 0 }, wait - 1, 1).waitMs).toBe(1);
  });

  it('debits usage above a reservation', () => {
    const spec = perMinute(1000);
    expect(give(spec, { tokens: 100, updatedAt: 0 }, 0, -300).tokens).toBe(-200);
  });

  it('knows a cost above the whole limit can never fit', () => {
    expect(exceedsLimit(perMinute(1000), 1000)).toBe(false);
    expect(exceedsLimit(perMinute(1000), 1001)).toBe(true);
  });
});
