import { FanoutError } from '../contracts/errors.js';
import type { BucketLevel, BucketView, Cost, KeyStats, LimitDimension, LimitView } from '../contracts/limiter.js';
import { exceedsLimit, type BucketSpec } from './token-bucket.js';

/** What every limiter keeps of a bucket, wherever its level lives. */
export interface KeyedBucket {
  name: LimitDimension;
  field: keyof Cost;
  spec: BucketSpec;
  /** Charged on this bucket since it was made, after settlement (by this process). */
  charged: number;
}

/** What every limiter keeps of a limit key in this process. */
export interface KeyedState<B extends KeyedBucket> {
  key: string;
  buckets: B[];
  maxConcurrent: number;
  inFlight: number;
  cooldownUntil: number;
  charged: Cost;
  /**
   * Calls in flight allowed after the provider refused one (a 429 fanout's
   * limits did not foresee): halved at each refusal, raised by one after a
   * window of successes, like TCP's congestion window. Unset until the first refusal.
   */
  adaptive?: { limit: number; successes: number };
  /** One call at a time until the provider's first answer has said what the limits are. */
  probing?: boolean;
}

/**
 * The part of a limiter that is this process's own whatever holds the
 * buckets: request sizes checked against the limits, the calls in flight
 * allowed after refusals, the probing of a key of unknown limits, and the
 * reports. `MemoryLimiter` and the Redis limiter build on it.
 */
export abstract class KeyedLimiter<B extends KeyedBucket, S extends KeyedState<B>> implements LimitView {
  protected readonly keys = new Map<string, S>();

  /** The state of `key`, made (with no limits) when it has none yet. */
  protected abstract ensure(key: string, now: number): S;

  abstract levels(key: string, now: number): readonly BucketLevel[];

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** The keys that have limits or have been used. */
  keyNames(): string[] {
    return [...this.keys.keys()];
  }

  /**
   * Throws `request_too_large` (not retryable) when `cost` exceeds a whole
   * window's limit on some dimension of `key`, so it could never be admitted.
   */
  checkFits(key: string, cost: Cost): void {
    const state = this.keys.get(key);
    if (!state) return;
    for (const bucket of state.buckets) {
      const amount = cost[bucket.field];
      if (exceedsLimit(bucket.spec, amount)) {
        throw new FanoutError(
          'request_too_large',
          `request needs ${Math.ceil(amount)} on ${bucket.name} but the limit of ${key} is ${bucket.spec.limit}; it can never be admitted (lower max tokens or shorten the prompt)`,
        );
      }
    }
  }

  /** The provider refused a call fanout admitted: halve the calls in flight allowed on `key`. */
  backOff(key: string, now: number): void {
    const state = this.ensure(key, Math.floor(now));
    const base = state.adaptive?.limit ?? Math.max(1, state.inFlight + 1);
    state.adaptive = { limit: Math.max(1, Math.floor(base / 2)), successes: 0 };
  }

  /**
   * Admits one call at a time on `key` until `observe` or `succeeded` says the
   * provider has answered: for a key whose limits fanout was not told.
   */
  probe(key: string, now: number): void {
    const state = this.ensure(key, Math.floor(now));
    if (state.buckets.length === 0 && !Number.isFinite(state.maxConcurrent)) state.probing = true;
  }

  /** True while `key` admits one call at a time for want of known limits. */
  isProbing(key: string): boolean {
    return this.keys.get(key)?.probing === true;
  }

  /**
   * Stops admitting one call at a time on `key` without having learned its
   * limits (the first call failed or hangs): `concurrent` calls at once from
   * now on, one more after each window of successes. False when `key` was not probing.
   */
  stopProbing(key: string, concurrent: number): boolean {
    const state = this.keys.get(key);
    if (!state?.probing) return false;
    state.probing = false;
    state.adaptive ??= { limit: concurrent, successes: 0 };
    return true;
  }

  /** A call on `key` succeeded: after as many successes as calls allowed, allow one more. */
  succeeded(key: string): void {
    const state = this.keys.get(key);
    if (state) state.probing = false;
    const adaptive = state?.adaptive;
    if (!adaptive) return;
    adaptive.successes += 1;
    if (adaptive.successes >= adaptive.limit) {
      adaptive.limit += 1;
      adaptive.successes = 0;
    }
  }

  /** Calls in flight allowed on `key` after refusals, when the provider has refused any. */
  adaptiveLimit(key: string): number | undefined {
    return this.keys.get(key)?.adaptive?.limit;
  }

  stats(key: string): KeyStats | undefined {
    const state = this.keys.get(key);
    if (!state) return undefined;
    return { charged: { ...state.charged }, inFlight: state.inFlight, cooldownUntil: state.cooldownUntil };
  }

  /** The limits of `key` as buckets see them (limit per window, capacity, and what was charged on each since it was made), for reports. */
  buckets(key: string): readonly BucketView[] {
    return (this.keys.get(key)?.buckets ?? []).map((b) => ({
      name: b.name,
      limit: b.spec.limit,
      windowMs: b.spec.windowMs,
      capacity: b.spec.capacity,
      charged: b.charged,
    }));
  }

  maxConcurrent(key: string): number {
    return this.keys.get(key)?.maxConcurrent ?? Number.POSITIVE_INFINITY;
  }

  /** True while the calls in flight on `state` are at what refusals or probing allow. */
  protected heldBack(state: S): boolean {
    return (
      (state.adaptive !== undefined && state.inFlight >= state.adaptive.limit) ||
      (state.probing === true && state.inFlight >= 1)
    );
  }
}

/** A bucket holding `tokens` as a provider's rate-limit headers would report it. */
export function levelOf(bucket: KeyedBucket, tokens: number): BucketLevel {
  const missing = bucket.spec.capacity - tokens;
  return {
    name: bucket.name,
    limit: bucket.spec.limit,
    capacity: bucket.spec.capacity,
    remaining: Math.max(0, Math.floor(tokens)),
    resetMs: Math.max(0, Math.ceil((missing * bucket.spec.windowMs) / bucket.spec.limit)),
  };
}

export function addInto(target: Cost, cost: Readonly<Cost>, sign: 1 | -1): void {
  target.requests += sign * cost.requests;
  target.tokens += sign * cost.tokens;
  target.inputTokens += sign * cost.inputTokens;
  target.outputTokens += sign * cost.outputTokens;
}
