import { outputCeiling, type ResolvedModel } from './models.js';
import type { Task } from './task.js';
import type { ModelResult, TaskRequest } from '../contracts/types.js';
import type { Clock } from '../contracts/clock.js';
import { isTerminal } from '../contracts/task-state.js';
import { cacheKey } from '../cache/cache-key.js';
import type { CacheEntry, CachePolicy, CacheStore } from '../contracts/cache-store.js';

export interface CacheOptions {
  /** Where answers are kept. Default: a `MemoryCacheStore` the engine owns. */
  store?: CacheStore;
  /** How long an answer stays, in ms, unless the model or the request says otherwise. Default 24 hours. */
  ttlMs?: number;
}

export const DEFAULT_CACHE_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_TENANT = 'default';

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** What the cache and single-flight ask of the engine. */
export interface CacheHooks {
  /** A task is answered without a call of its own: from the cache, or by the call it waited on. */
  answer(task: Task, result: ModelResult, now: number): void;
  /** A task waits on another's call for the same answer: it is queued, but not for a permit. */
  wait(task: Task, now: number): void;
  /** A task makes the call for its key: it goes to the scheduler. */
  admit(task: Task, now: number): void;
  /** A store failure, which never fails a task. */
  error(error: unknown): void;
}

/**
 * The result cache and single-flight. A request may use them when the cache
 * is on and the request asks for it, or when it leaves the choice to fanout
 * and its temperature is 0 (an unset temperature means the provider's default,
 * usually 1, whose answers are meant to differ: a hundred simulated interviews
 * from one prompt must not collapse into one).
 *
 * A task with a cache policy is answered from the store when it holds the
 * answer; otherwise it joins the call in flight for the same key, or leads
 * one. When a leader ends, its followers get its answer; if it failed or was
 * cancelled, they run on their own (the first becomes the new leader; a
 * failure is not shared).
 *
 * Store failures never fail a task: a lookup that throws is a miss, a write
 * that throws is skipped, and both are reported through `hooks.error`.
 */
export class ResultCache {
  private readonly inFlight = new Map<string, Task>();
  private readonly followersOf = new Map<Task, Task[]>();

  constructor(
    private readonly store: CacheStore,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly hooks: CacheHooks,
  ) {}

  /** Whether and how a request uses the cache; `defaultMaxTokens` is the engine's, for a request and model that name no ceiling. */
  policy(request: TaskRequest, model: ResolvedModel, defaultMaxTokens: number): CachePolicy | undefined {
    const choice = request.cache;
    if (choice === false) return undefined;
    if (choice === undefined && request.temperature !== 0) return undefined;
    const tenant = request.tenant ?? DEFAULT_TENANT;
    const ttlMs = (typeof choice === 'object' ? choice.ttlMs : undefined) ?? model.cacheTtlMs ?? this.ttlMs;
    return { key: cacheKey(tenant, request, outputCeiling(model, request, defaultMaxTokens)), tenant, ttlMs };
  }

  /** Looks up a new task's answer; then answers it, makes it wait on the call in flight, or admits it to lead one. */
  admit(task: Task, policy: CachePolicy, now: number): void {
    const found = this.lookup(policy.key, now);
    if (isPromise(found)) found.then((entry) => this.afterLookup(task, policy, entry));
    else this.afterLookup(task, policy, found);
  }

  /** A task with a cache policy ended: its answer is stored if it led a call, and its followers go on. */
  taskEnded(task: Task, policy: CachePolicy, now: number): void {
    if (this.inFlight.get(policy.key) !== task) return;
    this.inFlight.delete(policy.key);
    const followers = this.followersOf.get(task);
    this.followersOf.delete(task);
    const result = task.result;
    if (task.state === 'completed' && result && !result.cache) this.write(policy, result, now);
    if (!followers) return;
    for (const follower of followers) {
      if (follower.state !== 'queued') continue;
      if (task.state === 'completed' && result) {
        this.hooks.answer(follower, { ...result, cache: { source: 'in-flight', ageMs: 0 } }, now);
        continue;
      }
      const leader = this.inFlight.get(policy.key);
      if (leader) {
        this.join(leader, follower);
      } else {
        this.inFlight.set(policy.key, follower);
        this.hooks.admit(follower, now);
      }
    }
  }

  private afterLookup(task: Task, policy: CachePolicy, entry: CacheEntry | undefined): void {
    if (isTerminal(task.state)) return;
    const now = this.clock.now();
    if (entry) {
      this.hooks.answer(task, { ...entry.result, cache: { source: 'stored', ageMs: now - entry.storedAt } }, now);
      return;
    }
    const leader = this.inFlight.get(policy.key);
    if (leader) {
      this.hooks.wait(task, now);
      this.join(leader, task);
      return;
    }
    this.inFlight.set(policy.key, task);
    this.hooks.admit(task, now);
  }

  /** The stored answer for `key`, if any; a promise when the store answers later. */
  private lookup(key: string, now: number): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    try {
      const found = this.store.get(key, now);
      return isPromise(found) ? found.catch((error: unknown) => this.miss(error)) : found;
    } catch (error) {
      return this.miss(error);
    }
  }

  private join(leader: Task, follower: Task): void {
    const followers = this.followersOf.get(leader);
    if (followers) followers.push(follower);
    else this.followersOf.set(leader, [follower]);
  }

  private write(policy: CachePolicy, result: ModelResult, now: number): void {
    const entry: CacheEntry = { tenant: policy.tenant, result, storedAt: now, expiresAt: now + policy.ttlMs };
    try {
      const written = this.store.set(policy.key, entry);
      if (isPromise(written)) written.catch((error: unknown) => this.hooks.error(error));
    } catch (error) {
      this.hooks.error(error);
    }
  }

  private miss(error: unknown): undefined {
    this.hooks.error(error);
    return undefined;
  }
}
