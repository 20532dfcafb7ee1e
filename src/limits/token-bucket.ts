/**
 * A token bucket as pure functions of (spec, state, now, cost). No clock, no
 * mutation: the in-memory limiter and a future shared (Redis) limiter run the
 * same arithmetic against the same test table.
 *
 * Exact arithmetic: the level is kept in units of 1/windowMs of a token, so a
 * limit of L per window refills exactly L units per millisecond. With whole
 * limits, whole costs and whole-millisecond times (the limiter floors them)
 * every value is an integer, and two buckets fed the same events agree to the
 * unit; a fraction of a token is carried, never dropped or rounded away.
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
  /**
   * Milliseconds between fanout admitting a call and the provider counting it.
   * While fanout's bucket is full it would go on refilling during that time,
   * but the provider's, full too, cannot: so a take from a (nearly) full
   * bucket first drops the refill of `transitMs`. Default 0.
   */
  transitMs?: number;
}

export interface BucketState {
  /** Level in units of 1/windowMs token; negative while a large request's debt is repaid. */
  level: number;
  /** The time (ms) `level` was computed for. */
  updatedAt: number;
}

function capacityUnits(spec: BucketSpec): number {
  return spec.capacity * spec.windowMs;
}

/** Tokens in a state (for reports and tests). */
export function tokensIn(spec: BucketSpec, state: BucketState): number {
  return state.level / spec.windowMs;
}

export function fullBucket(spec: BucketSpec, now: number): BucketState {
  return { level: capacityUnits(spec), updatedAt: now };
}

/** The bucket as it stands at `now` (time never runs backwards here). */
export function refill(spec: BucketSpec, state: BucketState, now: number): BucketState {
  if (now <= state.updatedAt) return state;
  return { level: Math.min(capacityUnits(spec), state.level + (now - state.updatedAt) * spec.limit), updatedAt: now };
}

/** True when `cost` can never be admitted: it exceeds the whole window's limit. */
export function exceedsLimit(spec: BucketSpec, cost: number): boolean {
  return cost > spec.limit;
}

/**
 * Milliseconds from `now` until `cost` can be admitted; 0 means now. A cost
 * above `capacity` needs a full bucket. Whole milliseconds, rounded up, so a
 * timer set for the answer always finds the tokens there.
 */
export function waitTime(spec: BucketSpec, state: BucketState, now: number, cost: number): number {
  const current = refill(spec, state, now);
  const deficit = Math.min(cost, spec.capacity) * spec.windowMs - current.level;
  return deficit <= 0 ? 0 : Math.ceil(deficit / spec.limit);
}

export interface TakeResult {
  state: BucketState;
  /** 0 when the tokens were taken; otherwise the wait, and `state` is refilled but not charged. */
  waitMs: number;
}

/** Takes `cost` tokens if they are there now. */
export function take(spec: BucketSpec, state: BucketState, now: number, cost: number): TakeResult {
  const current = refill(spec, state, now);
  const waitMs = waitTime(spec, current, now, cost);
  if (waitMs > 0) return { state: current, waitMs };
  const ceiling = capacityUnits(spec) - (spec.transitMs ?? 0) * spec.limit;
  const before = Math.min(current.level, Math.max(ceiling, Math.min(cost, spec.capacity) * spec.windowMs));
  return { state: { level: before - cost * spec.windowMs, updatedAt: current.updatedAt }, waitMs: 0 };
}

/**
 * Gives `amount` tokens back (a refund after settling to real usage), never
 * above capacity. A negative amount takes more (usage above the reservation).
 */
export function give(spec: BucketSpec, state: BucketState, now: number, amount: number): BucketState {
  const current = refill(spec, state, now);
  return { level: Math.min(capacityUnits(spec), current.level + amount * spec.windowMs), updatedAt: current.updatedAt };
}

/**
 * The bucket brought down to `remaining` tokens when it holds more at `now`
 * (what a provider's headers say remains); undefined when it holds no more:
 * a level never goes up on a header's word.
 */
export function lowered(spec: BucketSpec, state: BucketState, now: number, remaining: number): BucketState | undefined {
  const current = refill(spec, state, now);
  const level = remaining * spec.windowMs;
  return level < current.level ? { level, updatedAt: current.updatedAt } : undefined;
}
