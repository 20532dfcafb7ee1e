import { describe, expect, it } from 'vitest';
import { lowerBound } from './lower-bound.js';
import { percentiles } from './percentiles.js';

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(values, [50, 90, 99, 100])).toEqual([50, 90, 99, 100]);
    expect(percentiles([7], [50, 99])).toEqual([7, 7]);
    expect(percentiles([], [50])).toEqual([undefined]);
  });
});

describe('lowerBound', () => {
  const rpm = { name: 'requestsPerMinute' as const, limit: 600, windowMs: 60_000, capacity: 10 };
  const charged = (requests: number, tokens = 0) => ({ requests, tokens, inputTokens: 0, outputTokens: tokens });

  it('is the rate limit time beyond the burst plus the shortest call, when that binds', () => {
    const bound = lowerBound(
      [
        {
          key: 'k',
          buckets: [rpm],
          charged: charged(110),
          providerMs: 1000,
          shortestCallMs: 20,
          maxConcurrent: Infinity,
        },
      ],
      256,
      50,
    );
    expect(bound).toEqual({ ms: 10_020, bindingOn: 'k requestsPerMinute' });
  });

  it('is provider time over concurrency when that binds', () => {
    const bound = lowerBound(
      [{ key: 'k', buckets: [rpm], charged: charged(10), providerMs: 8000, shortestCallMs: 20, maxConcurrent: 2 }],
      256,
      50,
    );
    expect(bound).toEqual({ ms: 4000, bindingOn: 'k concurrency' });
  });

  it('is the longest call when nothing else binds', () => {
    expect(lowerBound([], 4, 1234)).toEqual({ ms: 1234, bindingOn: 'longest call' });
  });
});
