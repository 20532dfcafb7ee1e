import { describe, expect, it } from 'vitest';
import {
  exceedsLimit,
  fullBucket,
  give,
  refill,
  take,
  tokensIn,
  waitTime,
  type BucketSpec,
  type BucketState,
} from './token-bucket.js';

const perMinute = (limit: number, capacity = limit, transitMs = 0): BucketSpec => ({
  limit,
  windowMs: 60_000,
  capacity,
  transitMs,
});
/** A state holding `tokens` tokens at time `at`. */
const holding = (spec: BucketSpec, tokens: number, at = 0): BucketState => ({
  level: tokens * spec.windowMs,
  updatedAt: at,
});

describe('token bucket', () => {
  it('refills exactly one request per 1,000 ms at 60 per minute', () => {
    const spec = perMinute(60);
    const empty = holding(spec, 0);
    expect(tokensIn(spec, refill(spec, empty, 1000))).toBe(1);
    expect(tokensIn(spec, refill(spec, empty, 250))).toBe(0.25);
    expect(waitTime(spec, empty, 0, 1)).toBe(1000);
    expect(waitTime(spec, holding(spec, 0.25), 0, 1)).toBe(750);
  });

  it('carries fractional tokens exactly: 7 per minute refilled second by second is exactly 7', () => {
    const spec = perMinute(7);
    let state = holding(spec, 0);
    for (let t = 1; t <= 60; t++) state = refill(spec, state, t * 1000);
    expect(tokensIn(spec, state)).toBe(7);
    expect(Number.isInteger(state.level)).toBe(true);
  });

  it('gives the same level whatever the order of refills in between', () => {
    const spec = perMinute(1200, 20);
    let a = holding(spec, 0);
    for (const t of [3, 17, 18, 250, 251, 999]) a = refill(spec, a, t);
    const b = refill(spec, holding(spec, 0), 999);
    expect(a).toEqual(b);
  });

  it('never holds more than its capacity', () => {
    const spec = perMinute(60, 10);
    expect(tokensIn(spec, refill(spec, holding(spec, 0), 3_600_000))).toBe(10);
    expect(tokensIn(spec, give(spec, fullBucket(spec, 0), 0, 5))).toBe(10);
  });

  it('takes all of a cost or none of it', () => {
    const spec = perMinute(60);
    const granted = take(spec, holding(spec, 5), 0, 5);
    expect(granted).toEqual({ state: holding(spec, 0), waitMs: 0 });
    const refused = take(spec, holding(spec, 4), 0, 5);
    expect(refused).toEqual({ state: holding(spec, 4), waitMs: 1000 });
  });

  it('admits a cost above capacity only from a full bucket, leaving debt', () => {
    const spec = perMinute(60_000, 1000);
    const big = take(spec, fullBucket(spec, 0), 0, 3000);
    expect(big).toEqual({ state: holding(spec, -2000), waitMs: 0 });
    // The debt refills at 1,000 per second: a small request waits 2,001 ms.
    expect(waitTime(spec, big.state, 0, 1)).toBe(2001);
    // Another big one needs the bucket full again: 3,000 ms.
    expect(waitTime(spec, big.state, 0, 3000)).toBe(3000);
  });

  it('rounds waits up to whole milliseconds so a timer always finds the tokens', () => {
    const spec = perMinute(7);
    const wait = waitTime(spec, holding(spec, 0), 0, 1);
    expect(wait).toBe(8572);
    expect(take(spec, holding(spec, 0), wait, 1).waitMs).toBe(0);
    expect(take(spec, holding(spec, 0), wait - 1, 1).waitMs).toBe(1);
  });

  it('drops the transit time’s refill when taking from a full bucket, and only then', () => {
    const spec = perMinute(60, 60, 250);
    // Full: 60 tokens, less 250 ms of refill (0.25) before the first take.
    const first = take(spec, fullBucket(spec, 0), 0, 1);
    expect(tokensIn(spec, first.state)).toBe(58.75);
    // Not full: nothing is dropped.
    expect(tokensIn(spec, take(spec, first.state, 0, 1).state)).toBe(57.75);
    // A guard never pushes an admissible take into debt.
    const tight = perMinute(60, 1, 5000);
    expect(tokensIn(tight, take(tight, fullBucket(tight, 0), 0, 1).state)).toBe(0);
  });

  it('debits usage above a reservation', () => {
    const spec = perMinute(1000);
    expect(tokensIn(spec, give(spec, holding(spec, 100), 0, -300))).toBe(-200);
  });

  it('knows a cost above the whole limit can never fit', () => {
    expect(exceedsLimit(perMinute(1000), 1000)).toBe(false);
    expect(exceedsLimit(perMinute(1000), 1001)).toBe(true);
  });
});
