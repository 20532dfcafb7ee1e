import type { ResolvedModel } from './models.js';
import type { Task } from './task.js';
import type { TaskRequest } from '../contracts/types.js';
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

/**
 * The result cache and single-flight. A request may use them when the cache
 * is on and the request asks for it, or when it leaves the choice to fanout
 * and its temperature is 0 (an unset temperature means the provider's default,
 * usually 1, whose answers are meant to differ: a hundred simulated interviews
 * from one prompt must not collapse into one).
 *
 * Store failures never fail a task: a lookup that throws is a miss, a write
 * that throws is skipped, and both are reported through `onError`.
 */
export class ResultCache {
  private readonly inFlight = new Map<string, Task>();
  private readonly followersOf = new Map<Task, Task[]>();

  constructor(
    private readonly store: CacheStore,
    private readonly ttlMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  policy(request: TaskRequest, model: ResolvedModel, maxTokens: number): CachePolicy | undefined {
    const choice = request.cache;
    if (choice === false) return undefined;
    if (choice === undefined && request.temperature !== 0) return undefined;
    const tenant = request.tenant ?? DEFAULT_TENANT;
    const ttlMs = (typeof choice === 'object' ? choice.ttlMs : undefined) ?? model.cacheTtlMs ?? this.ttlMs;
    return { key: cacheKey(tenant, request, maxTokens), tenant, ttlMs };
  }

  /** The stored answer for `key`, if any; a promise when the store answers later. */
  lookup(key: string, now: number): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    try {
      const found = this.store.get(key, now);
      return isPromise(found) ? found.catch((error: unknown) => this.miss(error)) : found;
    } catch (error) {
      return this.miss(error);
    }
  }

  /** The task whose call for `key` is in flight, if any. */
  leaderOf(key: string): Task | undefined {
    return this.inFlight.get(key);
  }

  lead(key: string, task: Task): void {
    this.inFlight.set(key, task);
  }

  join(leader: Task, follower: Task): void {
    const followers = this.followersOf.get(leader);
    if (followers) followers.push(follower);
    else this.followersOf.set(leader, [follower]);
  }

  /**
   * A task with a cache policy ended. If it led a call, the key is free again,
   * and a completed answer of its own is stored. Returns the tasks that were
   * waiting on it.
   */
  ended(task: Task, policy: CachePolicy, now: number): Task[] {
    if (this.inFlight.get(policy.key) !== task) return [];
    this.inFlight.delete(policy.key);
    const followers = this.followersOf.get(task) ?? [];
    this.followersOf.delete(task);
    const result = task.result;
    if (task.state === 'completed' && result && !result.cache) {
      const entry: CacheEntry = { tenant: policy.tenant, result, storedAt: now, expiresAt: now + policy.ttlMs };
      try {
        const written = this.store.set(policy.key, entry);
        if (isPromise(written)) written.catch((error: unknown) => this.onError(error));
      } catch (error) {
        this.onError(error);
      }
    }
    return followers;
  }

  private miss(error: unknown): undefined {
    this.onError(error);
    return undefined;
  }
}
