/**
 * A token bucket as pure functions of (spec, state, now, cost). No clock, no
 * mutation: the in-memory limiter and a future shared (Redis) limiter run the
 * same arithmetic against the same test table.
 *
 * Rates are kept as `limit` per `windowMs` and refills are computed as
 * `elapsed × limit / windowMs`, multiplying first, so that whole-millisecond
 * times give exact token counts (60 per minute refills exactly 1 per 1,000 ms).
 * Fractional tokens are carried, never dropped.
 */

export interface BucketSpec {
  /** Tokens added per `windowMs`: the provider's limit (for example 60 requests per minute). */
  limit: number;
  /** The window the limit is stated over, in milliseconds (60,000 for per-minute). */
  windowMs: number;
  /**
   * Most tokens the bucket can hold, i.e. the largest burst. A request costing
   * more than `capacity` (but no more than `limit`) is admitted only when the
   * bucket is full, and leaves it in debt that refills at the normal rate.
   */
  capacity: number;
}

export interface BucketState {
  /** Tokens available; negative while a large request's debt is being repaid. */
  tokens: number;
  /** The time `tokens` was computed for. */
  updatedAt: number;
}

/** Tolerance for floating-point residue when comparing token counts. */
const EPSILON = 1e-9;

export function fullBucket(spec: BucketSpec, now: number): BucketState {
  return { tokens: spec.capacity, updatedAt: now };
}

/** The bucket as it stands at `now` (time never runs backwards here). */
export function refill(spec: BucketSpec, state: BucketState, now: number): BucketState {
  if (now <= state.updatedAt) return state;
  const gained = ((now - state.updatedAt) * spec.limit) / spec.windowMs;
  return { tokens: Math.min(spec.capacity, state.tokens + gained), updatedAt: now };
}

/** True when `cost` can never be admitted: it exceeds the whole window's limit. */
export function exceedsLimit(spec: BucketSpec, cost: number): boolean {
  return cost > spec.limit + EPSILON;
}

/**
 * Milliseconds from `now` until `cost` can be admitted; 0 means now. A cost
 * above `capacity` needs a full bucket. Whole milliseconds, rounded up, so a
 * timer set for the answer always finds the tokens there.
 */
export function waitTime(spec: BucketSpec, state: BucketState, now: number, cost: number): number {
  const current = refill(spec, state, now);
  const needed = Math.min(cost, spec.capacity);
  const deficit = needed - current.tokens;
  if (deficit <= EPSILON) return 0;
  return Math.ceil((deficit * spec.windowMs) / spec.limit - EPSILON);
}

export interface TakeResult {
  state: BucketState;
  /** 0 when the tokens were taken; otherwise the wait, and `state` is unchanged but refilled. */
  waitMs: number;
}

/** Takes `cost` tokens if they are there now. */
export function take(spec: BucketSpec, state: BucketState, now: number, cost: number): TakeResult {
  const current = refill(spec, state, now);
  const waitMs = waitTime(spec, current, now, cost);
  if (waitMs > 0) return { state: current, waitMs };
  return { state: { tokens: current.tokens - cost, updatedAt: current.updatedAt }, waitMs: 0 };
}

/**
 * Gives `amount` tokens back (a refund after settling to real usage), never
 * above capacity. A negative amount takes more (usage above the reservation).
 */
export function give(spec: BucketSpec, state: BucketState, now: number, amount: number): BucketState {
  const current = refill(spec, state, now);
  return { tokens: Math.min(spec.capacity, current.tokens + amount), updatedAt: current.updatedAt };
}

/** Sets the bucket's level directly, e.g. from a provider's `remaining` header. */
export function withTokens(spec: BucketSpec, state: BucketState, now: number, tokens: number): BucketState {
  const current = refill(spec, state, now);
  return { tokens: Math.min(spec.capacity, tokens), updatedAt: current.updatedAt };
}
