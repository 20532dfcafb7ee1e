import { Redis } from 'ioredis';
import { SystemClock, type Clock } from '../../contracts/clock.js';
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
} from '../../contracts/limiter.js';
import { systemRandom } from '../../contracts/random.js';
import { bucketSpecsOf, DEFAULT_TRANSIT_MS, DIMENSIONS, learnedBucketSpec } from '../../limits/limiter.js';
import { fullBucket, lowered, refill, tokensIn, waitTime } from '../../limits/token-bucket.js';
import { addInto, KeyedLimiter, levelOf } from '../../limits/keyed-limiter.js';
import { limiterScripts, type LimiterScripts, type RemoteState } from './limiter-scripts.js';
import {
  covers,
  expireSlices,
  heldOf,
  newestGeneration,
  newSharedKey,
  oweBack,
  spend,
  type SharedBucket,
  type SharedKey,
} from './shared-key.js';

export interface RedisLimiterOptions {
  /** `redis://host:port/db`; or pass `client`. */
  url?: string;
  /** A connected ioredis client to share (the limiter does not close it; it opens one more for announcements). */
  client?: Redis;
  /** Prefix of every key and channel the limiter uses. Default `fanout:`. */
  prefix?: string;
  /** Timers for giving back unspent slices and keeping slots alive. Default: the system clock. */
  clock?: Clock;
  /**
   * Milliseconds a leased slice may be spent after it was leased; what is left
   * then goes back. Longer slices mean fewer round trips (a slice is sized to
   * the calls this process asked for in that time) but give up that much
   * refill when a slice is taken from a full bucket, since the provider's
   * bucket, full too, could not refill while it is spent. Default 1,000; it is
   * cut for a bucket that holds less than two slices' refill. 0: one call per
   * round trip, spent at the time it was leased.
   */
  holdMs?: number;
  /** Milliseconds a process's slots for calls in flight outlive its last round trip (a dead process's come back then). Default 15,000. */
  slotTtlMs?: number;
  /**
   * `'redis'` (default): buckets run on Redis `TIME`, so processes whose
   * clocks disagree keep one limit. `'caller'`: on the times passed in, for
   * one process on a `ManualClock` (tests with exact values).
   */
  time?: 'redis' | 'caller';
  /** Told of a round trip that failed (Redis unreachable); the key waits a second and tries again. */
  onError?: (error: Error) => void;
}

/** How long a held-back call waits for an answer from Redis before it looks again, when nothing wakes it sooner. */
const ANSWER_WAIT_MS = 50;
/** How long a key waits after a failed round trip. */
const RETRY_AFTER_ERROR_MS = 1000;

/**
 * A limiter shared by every fanout process pointing at one Redis: one set of
 * buckets per limit key, kept by Lua scripts (one per atomic operation), so
 * that together the processes never exceed a provider's limit. A process
 * leases a slice of a key's budget in one round trip, sized to its recent
 * rate, spends it with no Redis call, and gives back what it did not spend
 * (and settles usage above or below reservations) at its next round trip; so
 * the total never exceeds the limit. Cooldowns and what providers' headers
 * teach live in Redis and are announced, so one process's 429 stops all of
 * them at once and their slices are dropped. Slots for calls in flight are
 * leased the same way and come back when a process stops renewing them.
 *
 * The adaptive limit after refusals and the probing of unknown keys stay per
 * process, as do `stats` and bucket `charged` (what this process charged).
 */
export class RedisLimiter extends KeyedLimiter<SharedBucket, SharedKey> implements Limiter {
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly ownsClient: boolean;
  private readonly scripts: LimiterScripts;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly clock: Clock;
  private readonly holdMs: number;
  private readonly slotTtlMs: number;
  private readonly callerTime: boolean;
  private readonly onError: ((error: Error) => void) | undefined;
  private readonly id: string;
  private readonly listeners = new Set<(key: string) => void>();
  private idleWaiters: Array<() => void> = [];
  private pending = 0;
  /** Redis time minus local time, from the last answer. */
  private offset = 0;
  /** The latest time passed in: what `time: 'caller'` runs background round trips at. */
  private lastNow = 0;
  private cancelFlush: (() => void) | undefined;
  private flushAt = Number.POSITIVE_INFINITY;
  private trips = 0;
  private closed = false;

  constructor(options: RedisLimiterOptions) {
    super();
    if (!options.client && !options.url) throw new Error('RedisLimiter: give a url or a client');
    const holdMs = options.holdMs ?? 1000;
    if (!(holdMs >= 0 && Number.isFinite(holdMs))) throw new Error(`RedisLimiter: holdMs must be ≥ 0, got ${holdMs}`);
    this.ownsClient = !options.client;
    this.onError = options.onError;
    this.redis = options.client ?? new Redis(options.url as string, { maxRetriesPerRequest: 2 });
    this.subscriber = this.redis.duplicate();
    // A lost connection is told once per attempt to reconnect; round trips that fail say so themselves.
    for (const client of [this.redis, this.subscriber]) client.on('error', (error: Error) => this.onError?.(error));
    this.prefix = options.prefix ?? 'fanout:';
    this.channel = `${this.prefix}limits`;
    this.clock = options.clock ?? new SystemClock();
    this.holdMs = holdMs;
    this.slotTtlMs = options.slotTtlMs ?? 15_000;
    this.callerTime = options.time === 'caller';
    this.id = Math.floor(systemRandom.next() * 2 ** 48).toString(36);
    this.scripts = limiterScripts(this.redis);
    this.subscriber.on('message', (_channel: string, text: string) => this.announced(text));
    // Counted as a round trip for `whenIdle`: a limiter that is idle hears every announcement from then on.
    this.pending += 1;
    this.background(this.subscriber.subscribe(this.channel));
  }

  /** Resolves once Redis answers; rejects after `timeoutMs` or when it cannot be reached. */
  async ping(timeoutMs: number): Promise<void> {
    let cancel: (() => void) | undefined;
    const timeout = new Promise<never>((_, reject) => {
      cancel = this.clock.setTimer(timeoutMs, () => reject(new Error(`no answer in ${timeoutMs} ms`)));
    });
    try {
      await Promise.race([this.redis.ping(), timeout]);
    } finally {
      cancel?.();
    }
  }

  /** False while the connection to Redis is down (it reconnects by itself). */
  isAvailable(): boolean {
    return this.redis.status === 'ready';
  }

  /** Round trips to Redis so far (leases, give-backs, definitions, cooldowns, observations). */
  roundTrips(): number {
    return this.trips;
  }

  onChange(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  define(key: string, spec: LimitSpec, now: number): void {
    now = this.seen(now);
    const state = this.ensure(key, now);
    state.buckets = bucketSpecsOf(spec).map(({ name, field, spec: bucketSpec }) => ({
      name,
      field,
      spec: bucketSpec,
      generation: 0,
      seen: fullBucket(bucketSpec, now),
      charged: 0,
    }));
    state.maxConcurrent = spec.maxConcurrent ?? Number.POSITIVE_INFINITY;
    if (state.buckets.length === 0 && spec.maxConcurrent === undefined) {
      // No limits here: take whatever the other processes set, without wiping it.
      this.lease(state, now, ZERO_COST, 0);
      return;
    }
    this.sendDefine(state, now);
  }

  /** Sends the limits this process holds for `state`'s key to Redis (see lua/define-1.lua). */
  private sendDefine(state: SharedKey, now: number): void {
    const dims = state.buckets.map((b) => ({
      name: b.name,
      limit: b.spec.limit,
      window: b.spec.windowMs,
      cap: b.spec.capacity,
      transit: b.spec.transitMs ?? DEFAULT_TRANSIT_MS,
    }));
    const max = Number.isFinite(state.maxConcurrent) ? state.maxConcurrent : -1;
    const body = JSON.stringify({ dims, max });
    const args = [this.timeArg(now), body, this.channel, state.key, this.id];
    this.roundTrip(state, now, this.scripts.define([this.hashOf(state.key)], args));
  }

  reserve(key: string, cost: Cost, now: number): ReserveResult {
    now = this.seen(now);
    const state = this.ensure(key, now);
    if (state.cooldownUntil > now) return { granted: false, waitMs: state.cooldownUntil - now, reason: 'cooldown' };
    if (this.heldBack(state)) {
      return { granted: false, waitMs: Number.POSITIVE_INFINITY, reason: 'concurrency' };
    }
    this.checkFits(key, cost);
    state.asked += 1;
    expireSlices(state, now, this.holdMs);
    const needsSlot = Number.isFinite(state.maxConcurrent) && state.slots <= state.inFlight;
    if (needsSlot || !covers(state, cost, now)) return this.held(state, cost, now, needsSlot);
    spend(state, cost, now);
    for (const bucket of state.buckets) bucket.charged += cost[bucket.field];
    state.inFlight += 1;
    state.slotsIdle = false;
    addInto(state.charged, cost, 1);
    this.prefetch(state, cost, now);
    return { granted: true, key, cost, generation: newestGeneration(state), settled: false };
  }

  settle(reservation: Reservation, now: number, actual?: Cost): void {
    if (reservation.settled) return;
    reservation.settled = true;
    now = this.seen(now);
    const state = this.keys.get(reservation.key);
    if (!state) return;
    state.inFlight = Math.max(0, state.inFlight - 1);
    if (state.wantsSlot) this.notify(state.key);
    else if (state.othersWantSlots) this.giveBackSlots(state, now);
    if (!actual) return;
    const refunds: Partial<Record<LimitDimension, number>> = {};
    for (const bucket of state.buckets) {
      if (bucket.generation > reservation.generation) continue;
      const refund = reservation.cost[bucket.field] - actual[bucket.field];
      refunds[bucket.name] = refund;
      bucket.charged -= refund;
    }
    oweBack(state, reservation.generation, refunds);
    addInto(state.charged, reservation.cost, -1);
    addInto(state.charged, actual, 1);
    this.armFlush(now);
  }

  cooldown(key: string, untilMs: number, now: number): void {
    now = this.seen(now);
    const state = this.ensure(key, now);
    if (untilMs <= state.cooldownUntil) return;
    state.cooldownUntil = untilMs;
    state.slices = [];
    const args = [this.timeArg(now), Math.ceil(untilMs - now), this.channel, key, this.id];
    this.roundTrip(state, now, this.scripts.cooldown([this.hashOf(key)], args));
  }

  observe(key: string, observed: readonly ObservedLimit[], now: number): boolean {
    now = this.seen(now);
    const state = this.ensure(key, now);
    state.probing = false;
    let learnedTokens = false;
    const news = [];
    for (const seen of observed) {
      const meta = DIMENSIONS.find((d) => d.name === seen.dimension) as (typeof DIMENSIONS)[number];
      let bucket = state.buckets.find((b) => b.name === seen.dimension);
      const known = bucket !== undefined;
      if (!bucket && seen.limit !== undefined && seen.limit > 0) {
        const spec = learnedBucketSpec({ ...seen, limit: seen.limit }, meta.windowMs);
        bucket = {
          name: meta.name,
          field: meta.field,
          spec,
          generation: Infinity,
          seen: fullBucket(spec, now),
          charged: 0,
        };
        state.buckets.push(bucket);
        if (meta.field !== 'requests') learnedTokens = true;
        news.push({ seen, meta });
      }
      const lower = bucket && seen.remaining !== undefined && lowered(bucket.spec, bucket.seen, now, seen.remaining);
      if (!bucket || !lower) continue;
      bucket.seen = lower;
      if (known) {
        news.push({ seen, meta });
        // The provider has less left than this process thought: what it holds was leased against too much.
        state.slices = [];
      }
    }
    if (news.length === 0) return learnedTokens;
    const body = news.map(({ seen, meta }) => ({
      name: meta.name,
      window: meta.windowMs,
      limit: seen.limit ?? -1,
      remaining: seen.remaining ?? -1,
      resetMs: seen.resetMs ?? -1,
      transit: DEFAULT_TRANSIT_MS,
    }));
    const args = [this.timeArg(now), JSON.stringify(body), this.channel, key, this.id];
    this.roundTrip(state, now, this.scripts.observe([this.hashOf(key)], args));
    return learnedTokens;
  }

  /** Each bucket's level as last heard from Redis, refilled to `now`, with what this process holds of it and owes back. */
  levels(key: string, now: number): readonly BucketLevel[] {
    const state = this.keys.get(key);
    if (!state) return [];
    return state.buckets.map((b) => {
      const owed = b.generation <= state.back.generation ? (state.back.amounts[b.name] ?? 0) : 0;
      const level = tokensIn(b.spec, refill(b.spec, b.seen, Math.floor(now))) + owed + heldOf(state, b.name);
      return levelOf(b, Math.min(b.spec.capacity, level));
    });
  }

  /** Gives back every slice and slot this process holds, then closes its connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelFlush?.();
    for (const state of this.keys.values()) {
      for (const slice of state.slices) oweBack(state, slice.generation, slice.amounts);
      state.slices = [];
      state.backSlots += Math.max(0, state.slots - state.inFlight);
      state.slots = Math.min(state.slots, state.inFlight);
      if (Object.keys(state.back.amounts).length > 0 || state.backSlots > 0)
        this.lease(state, this.lastNow, ZERO_COST, 0);
    }
    await this.whenIdle();
    this.subscriber.disconnect();
    if (this.ownsClient) await this.redis.quit();
  }

  /** A call that the slices held cannot cover: lease more, or say how long Redis said to wait. */
  private held(state: SharedKey, cost: Cost, now: number, needsSlot: boolean): ReserveResult {
    if (needsSlot) state.wantsSlot = true;
    if (state.retryAt > now && !needsSlot && this.stillWaits(state, cost)) {
      return { granted: false, waitMs: state.retryAt - now, reason: state.retryReason };
    }
    const coming = state.slices.find((slice) => slice.at > now);
    if (coming && !needsSlot) return { granted: false, waitMs: coming.at - now, reason: state.retryReason };
    const units = this.sliceUnits(state, cost, now);
    // As many slots as calls in the slice: a process that needs one needs more soon; what it does not use goes back.
    const slots = needsSlot ? units : 0;
    if (state.pending) state.next = { now, cost, units, slots };
    else this.lease(state, now, cost, units, slots);
    if (needsSlot) return { granted: false, waitMs: Number.POSITIVE_INFINITY, reason: 'concurrency' };
    let longest = 0;
    let reason: WaitReason = state.retryReason;
    for (const bucket of state.buckets) {
      const waitMs = waitTime(bucket.spec, bucket.seen, now, cost[bucket.field] - heldOf(state, bucket.name));
      if (waitMs > longest) [longest, reason] = [waitMs, bucket.name];
    }
    return { granted: false, waitMs: Math.max(longest, ANSWER_WAIT_MS), reason };
  }

  /** True when the call that asked for `next` still could not start on what is held now. */
  private stillShort(state: SharedKey, next: { now: number; cost: Cost; slots: number }): boolean {
    if (next.slots > 0 && state.slots <= state.inFlight) return true;
    return !covers(state, next.cost, next.now) && !state.slices.some((slice) => slice.at > next.now);
  }

  /** True when Redis's last refusal holds for `cost` too: it needs as much of the bucket that refused. */
  private stillWaits(state: SharedKey, cost: Cost): boolean {
    const meta = DIMENSIONS.find((d) => d.name === state.retryReason);
    return meta === undefined || cost[meta.field] >= state.retryNeed;
  }

  /** Starts the next lease before the slices run out or grow old, so that calls never wait for one. */
  private prefetch(state: SharedKey, cost: Cost, now: number): void {
    if (state.pending || this.holdMs === 0 || state.slices.some((slice) => slice.at > now)) return;
    const oldest = state.slices[0];
    const ageing = oldest !== undefined && now - oldest.at >= this.holdMs / 2;
    const units = this.sliceUnits(state, cost, now);
    const low = state.buckets.some(
      (b) => cost[b.field] > 0 && heldOf(state, b.name, now) < (cost[b.field] * units) / 3,
    );
    if (ageing || low) this.lease(state, now, cost, units);
  }

  /** Calls worth leasing at once: what this process asked for in about `holdMs`, at most a quarter of a bucket. */
  private sliceUnits(state: SharedKey, cost: Cost, now: number): number {
    const elapsed = now - state.rateSince;
    if (elapsed >= 250) {
      state.perMs = state.asked / elapsed;
      state.asked = 0;
      state.rateSince = now;
    }
    // Until a quarter of a second has passed, what was asked so far stands for the rate.
    const perMs = Math.max(state.perMs, state.asked / Math.max(elapsed, 1));
    let units = Math.max(1, Math.ceil(perMs * this.holdFor(state)));
    for (const bucket of state.buckets) {
      const amount = cost[bucket.field];
      if (amount > 0) units = Math.min(units, Math.max(1, Math.floor(bucket.spec.capacity / 4 / amount)));
    }
    return units;
  }

  /** `holdMs`, cut so that a slice never holds more than half a bucket's refill: its cost when taken from full. */
  private holdFor(state: SharedKey): number {
    let hold = this.holdMs;
    for (const bucket of state.buckets) {
      const halfFull = (bucket.spec.capacity * bucket.spec.windowMs) / bucket.spec.limit / 2;
      hold = Math.min(hold, Math.max(0, Math.floor(halfFull - (bucket.spec.transitMs ?? 0))));
    }
    return hold;
  }

  private lease(state: SharedKey, now: number, unit: Cost, units: number, slots = 0): void {
    const back = state.back;
    const backSlots = state.backSlots;
    state.back = { generation: Number.POSITIVE_INFINITY, amounts: {} };
    state.backSlots = 0;
    const amounts: Partial<Record<LimitDimension, number>> = {};
    for (const bucket of state.buckets) amounts[bucket.name] = unit[bucket.field];
    const hold = this.holdFor(state);
    const args = [
      this.timeArg(now),
      this.id,
      hold,
      units,
      Math.max(1, Math.floor(units / 2)),
      JSON.stringify(amounts),
      JSON.stringify({ gen: Number.isFinite(back.generation) ? back.generation : 0, amounts: back.amounts }),
      slots,
      backSlots,
      this.slotTtlMs,
      hold,
      this.channel,
      state.key,
      state.buckets.length > 0 || Number.isFinite(state.maxConcurrent) ? '1' : '0',
    ];
    const keys = [this.hashOf(state.key), `${this.prefix}limit-holders:${state.key}`];
    this.roundTrip(state, now, this.scripts.lease(keys, args), (answer) => {
      if (answer.missing) {
        // Redis lost the key's limits: define them again, then lease (what was given back is lost: never counted twice).
        this.sendDefine(state, now);
        state.next = { now, cost: unit, units, slots };
        return;
      }
      if (answer.granted > 0) {
        const slice: Record<string, number> = {};
        for (const [name, amount] of Object.entries(amounts)) slice[name] = amount * answer.granted;
        // A slice leased ahead may be spent `start` ms after Redis leased it: counted from when the answer
        // came (never from before the request left), so that it is never spent early.
        const at = answer.start > 0 ? this.nowForBackground() + answer.start : now;
        state.slices.push({ at, generation: answer.gen, amounts: slice });
      }
      if (answer.start > 0) state.retryReason = answer.reason as WaitReason;
      if (answer.granted === 0 && units > 0) {
        state.retryAt = now + answer.wait;
        state.retryNeed = amounts[answer.reason as LimitDimension] ?? 0;
        state.retryReason = (answer.reason || 'requestsPerMinute') as WaitReason;
      }
      state.slots += answer.slots;
      if (answer.slots > 0) state.wantsSlot = false;
      this.armFlush(now);
    });
  }

  /** Sends one script for `state`'s key, then takes in the key as it answered. */
  private roundTrip(
    state: SharedKey,
    now: number,
    sent: Promise<RemoteState>,
    then?: (answer: RemoteState) => void,
  ): void {
    this.trips += 1;
    this.pending += 1;
    state.pending = true;
    sent
      .then((answer) => {
        this.offset = answer.now - now;
        if (!answer.missing) this.takeIn(state, answer);
        then?.(answer);
      })
      .catch((error: Error) => {
        state.retryAt = now + RETRY_AFTER_ERROR_MS;
        state.retryNeed = 0;
        state.retryReason = 'cooldown';
        this.onError?.(error);
      })
      .finally(() => {
        state.pending = false;
        // A call asked for a lease while this round trip was out: send it now, before the limiter counts as idle.
        const next = state.next;
        state.next = undefined;
        if (next && !this.closed && this.stillShort(state, next)) {
          this.lease(state, next.now, next.cost, next.units, next.slots);
        } else if (state.backSlots > 0 && !this.closed) {
          this.lease(state, now, ZERO_COST, 0);
        }
        this.notify(state.key);
        this.answered();
      });
  }

  /** The key's buckets, cooldown and limit on calls in flight as Redis answered them. */
  private takeIn(state: SharedKey, answer: RemoteState): void {
    const toLocal = (redisMs: number): number => redisMs - this.offset;
    state.cooldownUntil = Math.max(state.cooldownUntil, toLocal(answer.cooldown));
    if (answer.max !== undefined || answer.dims.length > 0)
      state.maxConcurrent = answer.max ?? Number.POSITIVE_INFINITY;
    const previous = new Map(state.buckets.map((b) => [b.name, b]));
    state.buckets = answer.dims.map((remote): SharedBucket => {
      const meta = DIMENSIONS.find((d) => d.name === remote.name) as (typeof DIMENSIONS)[number];
      const spec = { limit: remote.limit, windowMs: remote.window, capacity: remote.cap, transitMs: remote.transit };
      return {
        name: remote.name,
        field: meta.field,
        spec,
        generation: remote.gen,
        seen: { level: remote.level, updatedAt: toLocal(remote.at) },
        charged: previous.get(remote.name)?.charged ?? 0,
      };
    });
  }

  /** Gives back, at the latest when the oldest slice expires, what is owed and what is no longer needed. */
  private armFlush(now: number): void {
    if (this.closed) return;
    let due = Number.POSITIVE_INFINITY;
    for (const state of this.keys.values()) {
      if (state.slices.length > 0) due = Math.min(due, (state.slices[0]?.at ?? now) + this.holdMs + 1);
      if (Object.keys(state.back.amounts).length > 0) due = Math.min(due, now + this.holdMs + 1);
      if (state.slots > 0) due = Math.min(due, now + this.slotTtlMs / 3);
    }
    if (due >= this.flushAt || !Number.isFinite(due)) return;
    this.cancelFlush?.();
    this.flushAt = due;
    this.cancelFlush = this.clock.setTimer(Math.max(0, due - now), () => this.flush());
  }

  private flush(): void {
    this.flushAt = Number.POSITIVE_INFINITY;
    this.cancelFlush = undefined;
    if (this.closed) return;
    const now = this.callerTime ? this.lastNow : Math.floor(this.clock.now());
    for (const state of this.keys.values()) {
      if (state.pending) continue;
      expireSlices(state, now, this.holdMs);
      // Slots go back once they were idle at two flushes in a row (at most slotTtlMs / 3 apart), never
      // between a slot's lease and the call it was leased for; at once when another process asks for one.
      const idleSlots = state.wantsSlot ? 0 : Math.max(0, state.slots - state.inFlight);
      if (idleSlots > 0 && state.slotsIdle) {
        state.backSlots += idleSlots;
        state.slots -= idleSlots;
      }
      state.slotsIdle = idleSlots > 0;
      if (Object.keys(state.back.amounts).length > 0 || state.backSlots > 0 || state.slots > 0) {
        this.lease(state, now, ZERO_COST, 0);
      }
    }
    this.armFlush(now);
  }

  /** An announcement from another process (or this one): a cooldown, or limits that changed. */
  private announced(text: string): void {
    let message: { type?: string; key?: string; from?: string; cooldown?: string };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    const state = message.key === undefined ? undefined : this.keys.get(message.key);
    // This process's own changes are known here already.
    if (!state || message.from === this.id) return;
    if (message.type === 'wants-slots') {
      state.othersWantSlots = true;
      this.giveBackSlots(state, this.nowForBackground());
      return;
    }
    if (message.type === 'slots') {
      if (state.wantsSlot) this.notify(state.key);
      return;
    }
    // Slices were leased against levels that no longer hold: drop them (never given back, so never counted twice).
    state.slices = [];
    state.retryAt = 0;
    if (message.type === 'cooldown') {
      const until = Number(message.cooldown) - this.offset;
      state.cooldownUntil = Math.max(state.cooldownUntil, until);
    }
    if (message.type === 'changed' && !state.pending) this.lease(state, this.nowForBackground(), ZERO_COST, 0);
    this.notify(state.key);
  }

  /** Gives back the slots no call here uses, at once: another process waits for one. */
  private giveBackSlots(state: SharedKey, now: number): void {
    const idle = state.wantsSlot ? 0 : Math.max(0, state.slots - state.inFlight);
    if (idle === 0) return;
    state.othersWantSlots = false;
    state.slots -= idle;
    state.backSlots += idle;
    if (state.pending) return;
    this.lease(state, now, ZERO_COST, 0);
  }

  private nowForBackground(): number {
    return this.callerTime ? this.lastNow : Math.floor(this.clock.now());
  }

  private notify(key: string): void {
    for (const listener of this.listeners) listener(key);
  }

  private background(promise: Promise<unknown>): void {
    promise.catch((error: Error) => this.onError?.(error)).finally(() => this.answered());
  }

  /** One round trip fewer on its way; when none is, `whenIdle` resolves. */
  private answered(): void {
    this.pending -= 1;
    if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private seen(now: number): number {
    now = Math.floor(now);
    if (now > this.lastNow) this.lastNow = now;
    return now;
  }

  private timeArg(now: number): string {
    return this.callerTime ? String(now) : '';
  }

  private hashOf(key: string): string {
    return `${this.prefix}limit:${key}`;
  }

  protected ensure(key: string, now: number): SharedKey {
    let state = this.keys.get(key);
    if (!state) {
      state = newSharedKey(key, now);
      this.keys.set(key, state);
    }
    return state;
  }
}
