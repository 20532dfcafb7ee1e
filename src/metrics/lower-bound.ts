import type { Cost, LimitDimension } from '../contracts/limiter.js';

/** What one limit key did during a run, and the limits it ran under. */
export interface KeyWork {
  key: string;
  /** `charged`: what the bucket took since it was made (a bucket learned mid-run never held the calls before it). */
  buckets: ReadonlyArray<{ name: LimitDimension; limit: number; windowMs: number; capacity: number; charged?: number }>;
  /** Charged on the key after settlement. */
  charged: Cost;
  /** Sum of provider time of every attempt on the key, in ms. */
  providerMs: number;
  /** The shortest attempt on the key, in ms: even the last call admitted takes at least this long. */
  shortestCallMs: number;
  maxConcurrent: number;
}

export interface LowerBound {
  /** No schedule could finish this work sooner, in ms. */
  ms: number;
  /** What sets the bound: `<key> <dimension>`, `<key> concurrency`, `engine concurrency` or `longest call`. */
  bindingOn: string;
}

const FIELD: Record<LimitDimension, keyof Cost> = {
  requestsPerMinute: 'requests',
  requestsPerDay: 'requests',
  tokensPerMinute: 'tokens',
  inputTokensPerMinute: 'inputTokens',
  outputTokensPerMinute: 'outputTokens',
};

/**
 * The shortest wall time any scheduler could achieve for the work done:
 * the longest of (charged − initial burst) ÷ rate + the key's shortest call
 * for every limit (the last admission cannot come sooner, and that call then
 * takes at least the shortest time any call took), provider time ÷
 * concurrency for every key and for the engine, and the longest call.
 * Utilisation is this bound divided by the wall time achieved.
 */
export function lowerBound(keys: readonly KeyWork[], engineConcurrency: number, longestCallMs: number): LowerBound {
  let best: LowerBound = { ms: longestCallMs, bindingOn: 'longest call' };
  const consider = (ms: number, bindingOn: string): void => {
    if (ms > best.ms) best = { ms, bindingOn };
  };
  let totalProviderMs = 0;
  for (const key of keys) {
    totalProviderMs += key.providerMs;
    for (const bucket of key.buckets) {
      const beyondBurst =
        Math.min(key.charged[FIELD[bucket.name]], bucket.charged ?? Number.POSITIVE_INFINITY) - bucket.capacity;
      if (beyondBurst > 0)
        consider((beyondBurst * bucket.windowMs) / bucket.limit + key.shortestCallMs, `${key.key} ${bucket.name}`);
    }
    if (Number.isFinite(key.maxConcurrent)) consider(key.providerMs / key.maxConcurrent, `${key.key} concurrency`);
  }
  consider(totalProviderMs / engineConcurrency, 'engine concurrency');
  return best;
}
