import {
  ZERO_COST,
  type BucketLevel,
  type Cost,
  type LimitDimension,
  type Limiter,
  type LimitSpec,
  type ObservedLimit,
  type Reservation,
  type ReserveResult,
  type WaitReason,
} from '../contracts/limiter.js';
import { addInto, KeyedLimiter, levelOf, type KeyedBucket, type KeyedState } from './keyed-limiter.js';
import {
  fullBucket,
  give,
  lowered,
  refill,
  take,
  tokensIn,
  waitTime,
  type BucketSpec,
  type BucketState,
} from './token-bucket.js';

const MINUTE_MS = 60_000;
/** `LimitSpec.transitMs` when not set, and the transit of every bucket learned from headers. */
export const DEFAULT_TRANSIT_MS = 100;
const DAY_MS = 86_400_000;

/** Each limit dimension: the part of a call's cost it charges, and the window its limit is stated over. */
export const DIMENSIONS: ReadonlyArray<{ name: LimitDimension; field: keyof Cost; windowMs: number }> = [
  { name: 'requestsPerMinute', field: 'requests', windowMs: MINUTE_MS },
  { name: 'requestsPerDay', field: 'requests', windowMs: DAY_MS },
  { name: 'tokensPerMinute', field: 'tokens', windowMs: MINUTE_MS },
  { name: 'inputTokensPerMinute', field: 'inputTokens', windowMs: MINUTE_MS },
  { name: 'outputTokensPerMinute', field: 'outputTokens', windowMs: MINUTE_MS },
];

interface Bucket extends KeyedBucket {
  state: BucketState;
  /** Which buckets a reservation took from: those of a generation no later than its own. */
  generation: number;
}

type KeyState = KeyedState<Bucket>;

/** The buckets a spec makes, in `DIMENSIONS` order: one per limit it sets. */
export function bucketSpecsOf(spec: LimitSpec): Array<{ name: LimitDimension; field: keyof Cost; spec: BucketSpec }> {
  const burstMs = (spec.burstSeconds ?? 60) * 1000;
  const specs = [];
  for (const dimension of DIMENSIONS) {
    const limit = spec[dimension.name];
    if (limit === undefined) continue;
    const share =
      dimension.windowMs === DAY_MS ? limit : (limit * Math.min(burstMs, dimension.windowMs)) / dimension.windowMs;
    specs.push({
      name: dimension.name,
      field: dimension.field,
      spec: {
        limit,
        windowMs: dimension.windowMs,
        capacity: Math.max(share, Math.min(1, limit)),
        transitMs: spec.transitMs ?? DEFAULT_TRANSIT_MS,
      },
    });
  }
  return specs;
}

/**
 * The bucket a provider's headers teach for a dimension fanout was not told:
 * the stated rate, holding what the provider's holds when full (`remaining`
 * plus the refill until its reset), at most a whole window.
 */
export function learnedBucketSpec(seen: ObservedLimit & { limit: number }, windowMs: number): BucketSpec {
  const full =
    seen.remaining !== undefined && seen.resetMs !== undefined
      ? seen.remaining + (seen.limit / windowMs) * seen.resetMs
      : seen.limit;
  return {
    limit: seen.limit,
    windowMs,
    capacity: Math.max(1, Math.min(seen.limit, full)),
    transitMs: DEFAULT_TRANSIT_MS,
  };
}

function bucketsFor(spec: LimitSpec, now: number, generation: number): Bucket[] {
  return bucketSpecsOf(spec).map(({ name, field, spec: bucketSpec }) => ({
    name,
    field,
    spec: bucketSpec,
    state: fullBucket(bucketSpec, now),
    generation,
    charged: 0,
  }));
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
export class MemoryLimiter extends KeyedLimiter<Bucket, KeyState> implements Limiter {
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

  /** Takes a permit for `cost` on `key` if every dimension has room now. */
  reserve(key: string, cost: Cost, now: number): ReserveResult {
    now = Math.floor(now);
    const state = this.ensure(key, now);
    if (state.cooldownUntil > now) return { granted: false, waitMs: state.cooldownUntil - now, reason: 'cooldown' };
    if (state.inFlight >= state.maxConcurrent || this.heldBack(state)) {
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
        const spec = learnedBucketSpec({ ...seen, limit: seen.limit }, meta.windowMs);
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
      const lower = bucket && seen.remaining !== undefined && lowered(bucket.spec, bucket.state, now, seen.remaining);
      if (bucket && lower) bucket.state = lower;
    }
    return learnedTokens;
  }

  /** Each bucket's level at `now`: what a provider's rate-limit headers would report. */
  levels(key: string, now: number): readonly BucketLevel[] {
    const state = this.keys.get(key);
    if (!state) return [];
    return state.buckets.map((b) => levelOf(b, tokensIn(b.spec, refill(b.spec, b.state, Math.floor(now)))));
  }

  protected ensure(key: string, now: number): KeyState {
    let state = this.keys.get(key);
    if (!state) {
      this.define(key, {}, now);
      state = this.keys.get(key) as KeyState;
    }
    return state;
  }
}
