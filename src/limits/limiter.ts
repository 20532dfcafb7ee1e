import { FanoutError } from '../contracts/errors.js';
import {
  ZERO_COST,
  type BucketLevel,
  type BucketView,
  type Cost,
  type KeyStats,
  type LimitDimension,
  type Limiter,
  type LimitSpec,
  type ObservedLimit,
  type Reservation,
  type ReserveResult,
  type WaitReason,
} from '../contracts/limiter.js';
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

const MINUTE_MS = 60_000;
const DEFAULT_TRANSIT_MS = 100;
const DAY_MS = 86_400_000;

const DIMENSIONS: ReadonlyArray<{ name: LimitDimension; field: keyof Cost; windowMs: number }> = [
  { name: 'requestsPerMinute', field: 'requests', windowMs: MINUTE_MS },
  { name: 'requestsPerDay', field: 'requests', windowMs: DAY_MS },
  { name: 'tokensPerMinute', field: 'tokens', windowMs: MINUTE_MS },
  { name: 'inputTokensPerMinute', field: 'inputTokens', windowMs: MINUTE_MS },
  { name: 'outputTokensPerMinute', field: 'outputTokens', windowMs: MINUTE_MS },
];

interface Bucket {
  name: LimitDimension;
  field: keyof Cost;
  spec: BucketSpec;
  state: BucketState;
  /** Which buckets a reservation took from: those of a generation no later than its own. */
  generation: number;
  /** Charged on this bucket since it was made, after settlement. */
  charged: number;
}

interface KeyState {
  key: string;
  buckets: Bucket[];
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

function bucketsFor(spec: LimitSpec, now: number, generation: number): Bucket[] {
  const burstMs = (spec.burstSeconds ?? 60) * 1000;
  const buckets: Bucket[] = [];
  for (const dimension of DIMENSIONS) {
    const limit = spec[dimension.name];
    if (limit === undefined) continue;
    const share =
      dimension.windowMs === DAY_MS ? limit : (limit * Math.min(burstMs, dimension.windowMs)) / dimension.windowMs;
    const bucketSpec: BucketSpec = {
      limit,
      windowMs: dimension.windowMs,
      capacity: Math.max(share, Math.min(1, limit)),
      transitMs: spec.transitMs ?? DEFAULT_TRANSIT_MS,
    };
    buckets.push({
      name: dimension.name,
      field: dimension.field,
      spec: bucketSpec,
      state: fullBucket(bucketSpec, now),
      generation,
      charged: 0,
    });
  }
  return buckets;
}

/**
 * The in-process limiter: one set of token buckets and a concurrency count per
 * limit key. Time is passed in (`now`), never read, and floored to whole
 * milliseconds so the bucket arithmetic stays exact.
 *
 * `reserve` takes every dimension at once or none. `settle` corrects the charge
 * to the real usage: a refund when the call used less than reserved (up to the
 * bucket's capacity), a debit when it used more. `cooldown` stops the whole key
 * until a time, when a provider has said to wait.
 */
export class MemoryLimiter implements Limiter {
  private readonly keys = new Map<string, KeyState>();
  /** Raised each time buckets are made. */
  private generation = 0;

  /** Sets (or replaces) the limits of `key`. Buckets start full. */
  define(key: string, spec: LimitSpec, now: number): void {
    now = Math.floor(now);
    const previous = this.keys.get(key);
    this.keys.set(key, {
      key,
      buckets: bucketsFor(spec, now, ++this.generation),
      maxConcurrent: spec.maxConcurrent ?? Number.POSITIVE_INFINITY,
      inFlight: previous?.inFlight ?? 0,
      cooldownUntil: previous?.cooldownUntil ?? 0,
      charged: previous?.charged ?? { ...ZERO_COST },
    });
  }

  has(key: string): boolean {
    return this.keys.has(key);
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

  /** Takes a permit for `cost` on `key` if every dimension has room now. */
  reserve(key: string, cost: Cost, now: number): ReserveResult {
    now = Math.floor(now);
    const state = this.ensure(key, now);
    if (state.cooldownUntil > now) return { granted: false, waitMs: state.cooldownUntil - now, reason: 'cooldown' };
    if (
      state.inFlight >= state.maxConcurrent ||
      (state.adaptive && state.inFlight >= state.adaptive.limit) ||
      (state.probing && state.inFlight >= 1)
    ) {
      return { granted: false, waitMs: Number.POSITIVE_INFINITY, reason: 'concurrency' };
    }
    this.checkFits(key, cost);
    let longest = 0;
    let reason: WaitReason = 'requestsPerMinute';
    for (const bucket of state.buckets) {
      const waitMs = waitTime(bucket.spec, bucket.state, now, cost[bucket.field]);
      if (waitMs > longest) {
        longest = waitMs;
        reason = bucket.name;
      }
    }
    if (longest > 0) return { granted: false, waitMs: longest, reason };
    for (const bucket of state.buckets) {
      bucket.state = take(bucket.spec, bucket.state, now, cost[bucket.field]).state;
      bucket.charged += cost[bucket.field];
    }
    state.inFlight += 1;
    addInto(state.charged, cost, 1);
    return { granted: true, key, cost, generation: this.generation, settled: false };
  }

  /**
   * Ends a reservation. With `actual`, each dimension is corrected from the
   * reserved cost to `actual`; without it, the reserved cost stands. Settling
   * twice is a no-op.
   */
  settle(reservation: Reservation, now: number, actual?: Cost): void {
    if (reservation.settled) return;
    reservation.settled = true;
    now = Math.floor(now);
    const state = this.keys.get(reservation.key);
    if (!state) return;
    state.inFlight = Math.max(0, state.inFlight - 1);
    if (!actual) return;
    for (const bucket of state.buckets) {
      if (bucket.generation > reservation.generation) continue;
      const refund = reservation.cost[bucket.field] - actual[bucket.field];
      if (refund === 0) continue;
      bucket.state = give(bucket.spec, bucket.state, now, refund);
      bucket.charged -= refund;
    }
    addInto(state.charged, reservation.cost, -1);
    addInto(state.charged, actual, 1);
  }

  /** Admits nothing on `key` before `untilMs`. A shorter cooldown never shortens a longer one. */
  cooldown(key: string, untilMs: number, now: number): void {
    const state = this.ensure(key, now);
    state.cooldownUntil = Math.max(state.cooldownUntil, untilMs);
  }

  /**
   * Takes in what a provider said of its limits. A dimension fanout was told
   * keeps its configured limit, but its level comes down to the provider's
   * `remaining` when that is lower (other clients may share the quota; the
   * level never goes up on a header's word). A dimension fanout was not told
   * is learned: a bucket of the stated limit, holding what the provider's
   * holds when full (`remaining` + refill until its reset), starting at
   * `remaining`. Returns true when it made a bucket that limits tokens:
   * calls on `key` must from then on be charged their input and settled.
   */
  observe(key: string, observed: readonly ObservedLimit[], now: number): boolean {
    now = Math.floor(now);
    const state = this.ensure(key, now);
    state.probing = false;
    let learnedTokens = false;
    for (const seen of observed) {
      const meta = DIMENSIONS.find((d) => d.name === seen.dimension) as (typeof DIMENSIONS)[number];
      let bucket = state.buckets.find((b) => b.name === seen.dimension);
      if (!bucket && seen.limit !== undefined && seen.limit > 0) {
        const perMs = seen.limit / meta.windowMs;
        const full =
          seen.remaining !== undefined && seen.resetMs !== undefined
            ? seen.remaining + perMs * seen.resetMs
            : seen.limit;
        const spec: BucketSpec = {
          limit: seen.limit,
          windowMs: meta.windowMs,
          capacity: Math.max(1, Math.min(seen.limit, full)),
          transitMs: DEFAULT_TRANSIT_MS,
        };
        bucket = {
          name: seen.dimension,
          field: meta.field,
          spec,
          state: fullBucket(spec, now),
          generation: ++this.generation,
          charged: 0,
        };
        state.buckets.push(bucket);
        if (meta.field !== 'requests') learnedTokens = true;
      }
      if (bucket && seen.remaining !== undefined) {
        const current = refill(bucket.spec, bucket.state, now);
        const level = seen.remaining * bucket.spec.windowMs;
        if (level < current.level) bucket.state = { level, updatedAt: current.updatedAt };
      }
    }
    return learnedTokens;
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

  /** The keys that have limits or have been used. */
  keyNames(): string[] {
    return [...this.keys.keys()];
  }

  /** The limits of `key` as buckets see them (limit per window, capacity, and what was charged on each since it was made), for reports. */
  buckets(key: string): readonly BucketView[] {
    const state = this.keys.get(key);
    if (!state) return [];
    return state.buckets.map((b) => ({
      name: b.name,
      limit: b.spec.limit,
      windowMs: b.spec.windowMs,
      capacity: b.spec.capacity,
      charged: b.charged,
    }));
  }

  /** Each bucket's level at `now`: what a provider's rate-limit headers would report. */
  levels(key: string, now: number): readonly BucketLevel[] {
    const state = this.keys.get(key);
    if (!state) return [];
    return state.buckets.map((b) => {
      const current = refill(b.spec, b.state, Math.floor(now));
      const tokens = tokensIn(b.spec, current);
      const missing = b.spec.capacity - tokens;
      return {
        name: b.name,
        limit: b.spec.limit,
        capacity: b.spec.capacity,
        remaining: Math.max(0, Math.floor(tokens)),
        resetMs: Math.ceil((missing * b.spec.windowMs) / b.spec.limit),
      };
    });
  }

  maxConcurrent(key: string): number {
    return this.keys.get(key)?.maxConcurrent ?? Number.POSITIVE_INFINITY;
  }

  private ensure(key: string, now: number): KeyState {
    let state = this.keys.get(key);
    if (!state) {
      this.define(key, {}, now);
      state = this.keys.get(key) as KeyState;
    }
    return state;
  }
}

function addInto(target: Cost, cost: Readonly<Cost>, sign: 1 | -1): void {
  target.requests += sign * cost.requests;
  target.tokens += sign * cost.tokens;
  target.inputTokens += sign * cost.inputTokens;
  target.outputTokens += sign * cost.outputTokens;
}
