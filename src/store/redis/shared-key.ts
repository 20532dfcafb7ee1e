import { ZERO_COST, type Cost, type LimitDimension, type WaitReason } from '../../contracts/limiter.js';
import type { KeyedBucket, KeyedState } from '../../limits/keyed-limiter.js';
import type { BucketState } from '../../limits/token-bucket.js';

/** A bucket of a key as this process last heard it from Redis. */
export interface SharedBucket extends KeyedBucket {
  generation: number;
  /** Its level at the last answer, in local time. */
  seen: BucketState;
}

/** Part of a key's budget leased from Redis: spendable here from `at` until `at + holdMs`. */
export interface Slice {
  at: number;
  /** The key's newest bucket generation when it was leased: nothing goes back to a bucket made later. */
  generation: number;
  amounts: Partial<Record<LimitDimension, number>>;
}

/** What this process owes Redis, given back at its next round trip for the key. */
export interface GiveBack {
  generation: number;
  amounts: Partial<Record<LimitDimension, number>>;
}

/** One limit key as this process holds it. */
export interface SharedKey extends KeyedState<SharedBucket> {
  /** Slots for calls in flight held from Redis, and how many of them calls use. */
  slots: number;
  slices: Slice[];
  back: GiveBack;
  backSlots: number;
  /** A round trip for this key is on its way. */
  pending: boolean;
  /** No lease before this (local ms): Redis said when the next would fit. */
  retryAt: number;
  retryReason: WaitReason;
  /** What the refused lease needed of the bucket that refused it: a call needing less may still get a slice. */
  retryNeed: number;
  /** A lease asked for while one was on its way: sent when it answers. */
  next?: { now: number; cost: Cost; units: number; slots: number };
  wantsSlot: boolean;
  /** Some slots were unused at the last flush: unused at the next, they go back. */
  slotsIdle: boolean;
  /** Another process was refused a slot: give back idle ones as soon as there are. */
  othersWantSlots: boolean;
  /** Calls asked for since `rateSince`: how big a slice to lease. */
  asked: number;
  rateSince: number;
  perMs: number;
}

export function newSharedKey(key: string, now: number): SharedKey {
  return {
    key,
    buckets: [],
    maxConcurrent: Number.POSITIVE_INFINITY,
    slots: 0,
    inFlight: 0,
    cooldownUntil: 0,
    charged: { ...ZERO_COST },
    slices: [],
    back: { generation: Number.POSITIVE_INFINITY, amounts: {} },
    backSlots: 0,
    pending: false,
    retryAt: 0,
    retryReason: 'requestsPerMinute',
    retryNeed: 0,
    wantsSlot: false,
    othersWantSlots: false,
    slotsIdle: false,
    asked: 0,
    rateSince: now,
    perMs: 0,
  };
}

/** Adds `amounts` to what is owed Redis, for buckets no newer than `generation`. */
export function oweBack(state: SharedKey, generation: number, amounts: Partial<Record<LimitDimension, number>>): void {
  state.back.generation = Math.min(state.back.generation, generation);
  for (const [name, amount] of Object.entries(amounts) as Array<[LimitDimension, number]>) {
    if (amount !== 0) state.back.amounts[name] = (state.back.amounts[name] ?? 0) + amount;
  }
}

/** Moves the slices held past `holdMs` into what is owed back. */
export function expireSlices(state: SharedKey, now: number, holdMs: number): void {
  const live = [];
  for (const slice of state.slices) {
    if (now - slice.at > holdMs) oweBack(state, slice.generation, slice.amounts);
    else live.push(slice);
  }
  state.slices = live;
}

/** What the slices spendable at `now` hold of bucket `name` (all of them, without `now`). */
export function heldOf(state: SharedKey, name: LimitDimension, now = Number.POSITIVE_INFINITY): number {
  let held = 0;
  for (const slice of state.slices) if (slice.at <= now) held += slice.amounts[name] ?? 0;
  return held;
}

/** True when the slices spendable at `now` hold `cost` on every bucket. */
export function covers(state: SharedKey, cost: Cost, now: number): boolean {
  return state.buckets.every((bucket) => heldOf(state, bucket.name, now) >= cost[bucket.field]);
}

/** Spends `cost` from the slices spendable at `now`, oldest first; emptied slices go. */
export function spend(state: SharedKey, cost: Cost, now: number): void {
  for (const bucket of state.buckets) {
    let due = cost[bucket.field];
    for (const slice of state.slices) {
      if (due <= 0) break;
      if (slice.at > now) continue;
      const take = Math.min(due, slice.amounts[bucket.name] ?? 0);
      slice.amounts[bucket.name] = (slice.amounts[bucket.name] ?? 0) - take;
      due -= take;
    }
  }
  state.slices = state.slices.filter((slice) => Object.values(slice.amounts).some((amount) => amount > 0));
}

/** The key's newest bucket generation. */
export function newestGeneration(state: SharedKey): number {
  let newest = 0;
  for (const bucket of state.buckets) newest = Math.max(newest, bucket.generation);
  return newest;
}
