/**
 * The limiter contract: per-key buckets for every limit dimension, a count of
 * calls in flight, cooldowns, and what the providers' headers teach. The
 * engine calls it synchronously on every admission, so an implementation
 * answers from what it holds (a shared one keeps a local share of a shared
 * budget and settles with the others in the background). Time is passed in
 * (`now`, epoch ms), never read. `fanout/testing/contracts` has the suite an
 * implementation must pass (`limiterContract`).
 */

/**
 * Limits on one limit key (a provider's model, or a group of models that share
 * a provider quota). Every field is optional; a key with none is unlimited.
 */
export interface LimitSpec {
  requestsPerMinute?: number;
  requestsPerDay?: number;
  /** Input + output tokens per minute, as the provider counts them (see accounting). */
  tokensPerMinute?: number;
  inputTokensPerMinute?: number;
  outputTokensPerMinute?: number;
  /** Calls in flight at once on this key. */
  maxConcurrent?: number;
  /**
   * Seconds of a per-minute rate the buckets may hold, i.e. the largest burst.
   * Default 60: the bucket holds a whole minute, as OpenAI and Anthropic describe
   * their limits. Set it lower (e.g. 1) for a provider that enforces a minute's
   * limit over short slices. Per-day buckets always hold the whole day.
   */
  burstSeconds?: number;
  /**
   * Milliseconds between fanout admitting a call and the provider counting
   * it. When a bucket is full, fanout's would keep refilling during that time
   * while the provider's could not; a take from a full bucket therefore first
   * gives up `transitMs` of refill, so fanout's count never runs ahead of the
   * provider's. Default 100: a call on a kept-alive HTTPS connection reaches
   * the provider within that, and so does a call to the in-process mock even
   * when a garbage collection or a first compile delays it by a few
   * milliseconds. The cost is at most 100 ms of refill each time a bucket
   * starts a burst from full. Raise it for slow links.
   */
  transitMs?: number;
}

/** What one call is charged, per dimension. */
export interface Cost {
  requests: number;
  tokens: number;
  inputTokens: number;
  outputTokens: number;
}

export const ZERO_COST: Readonly<Cost> = Object.freeze({ requests: 0, tokens: 0, inputTokens: 0, outputTokens: 0 });

export type LimitDimension =
  'requestsPerMinute' | 'requestsPerDay' | 'tokensPerMinute' | 'inputTokensPerMinute' | 'outputTokensPerMinute';

/** What a provider's headers said of one limit dimension. */
export interface ObservedLimit {
  dimension: LimitDimension;
  limit?: number;
  remaining?: number;
  /** Milliseconds until the bucket is full again. */
  resetMs?: number;
}

/** A permit held by one call between `reserve` and `settle`. */
export interface Reservation {
  readonly granted: true;
  readonly key: string;
  readonly cost: Readonly<Cost>;
  /** The limiter's bucket generation when it was granted: a bucket made later never took from it, so never refunds it. */
  readonly generation: number;
  settled: boolean;
}

export type WaitReason = LimitDimension | 'cooldown' | 'concurrency';

/** Why and how long a call must wait for its permit. */
export interface LimitWait {
  readonly granted: false;
  /** Milliseconds until the permit can be had; Infinity when it waits for a call in flight to end. */
  readonly waitMs: number;
  readonly reason: WaitReason;
}

/** The permit itself when granted (no wrapper: one object per call), else the wait. */
export type ReserveResult = Reservation | LimitWait;

export interface KeyStats {
  /** Charged so far, after settlement: what the provider was told it used. */
  charged: Cost;
  inFlight: number;
  cooldownUntil: number;
}

/** One bucket of a key as reports see it. */
export interface BucketView {
  name: LimitDimension;
  /** Per window. */
  limit: number;
  windowMs: number;
  /** The largest burst: what the bucket holds when full. */
  capacity: number;
  /** Charged on this bucket since it was made, after settlement. */
  charged: number;
}

/** A bucket's level at some moment: what a provider's rate-limit headers would report. */
export interface BucketLevel {
  name: LimitDimension;
  limit: number;
  capacity: number;
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

/** What reports, metrics and the server read of a limiter: nothing here changes it. */
export interface LimitView {
  /** True when `key` has been defined or used. */
  has(key: string): boolean;
  /** The keys that have limits or have been used. */
  keyNames(): string[];
  stats(key: string): KeyStats | undefined;
  buckets(key: string): readonly BucketView[];
  levels(key: string, now: number): readonly BucketLevel[];
  /** Calls in flight allowed on `key` by its limits (Infinity when none). */
  maxConcurrent(key: string): number;
  /** Calls in flight allowed on `key` after the provider refused some, when it has. */
  adaptiveLimit(key: string): number | undefined;
  /** True while `key` admits one call at a time for want of known limits. */
  isProbing(key: string): boolean;
}

/** What the engine needs of a limiter. */
export interface Limiter extends LimitView {
  /** Sets (or replaces) the limits of `key`; buckets start full. */
  define(key: string, spec: LimitSpec, now: number): void;
  /** Throws `request_too_large` when `cost` exceeds a whole window of some limit of `key`. */
  checkFits(key: string, cost: Cost): void;
  /** Takes a permit for `cost` on every dimension of `key`, or none and says how long to wait. */
  reserve(key: string, cost: Cost, now: number): ReserveResult;
  /** Ends a reservation: corrected to `actual` when given, else the reserved cost stands. Twice is a no-op. */
  settle(reservation: Reservation, now: number, actual?: Cost): void;
  /** Admits nothing on `key` before `untilMs`; a shorter cooldown never shortens a longer one. */
  cooldown(key: string, untilMs: number, now: number): void;
  /** Takes in what a provider said of its limits; true when that made a bucket limiting tokens. */
  observe(key: string, observed: readonly ObservedLimit[], now: number): boolean;
  /** The provider refused a call the limits let through: fewer calls in flight on `key`. */
  backOff(key: string, now: number): void;
  /** One call at a time on `key` until the provider's first answer (a key whose limits fanout was not told). */
  probe(key: string, now: number): void;
  /** Stops probing `key` without its limits: `concurrent` calls at once. False when it was not probing. */
  stopProbing(key: string, concurrent: number): boolean;
  /** A call on `key` succeeded. */
  succeeded(key: string): void;
  /**
   * A shared limiter answers from the share of a shared budget it holds and
   * fetches more in the background; `reserve` then says to wait while it does.
   * It calls `listener` when `key` may admit again sooner than it said (a
   * slice came, a slot came free elsewhere), so the engine looks again.
   * Returns a function that stops the calls. In-process limiters have no need.
   */
  onChange?(listener: (key: string) => void): () => void;
  /** A shared limiter: resolves once every round trip to its store started so far has been answered. */
  whenIdle?(): Promise<void>;
  /** A shared limiter: false while its store cannot be reached (the server then refuses new work with 503). */
  isAvailable?(): boolean;
}
