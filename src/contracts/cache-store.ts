import type { ModelResult } from './types.js';

/** One stored answer. Times are epoch milliseconds from the engine's clock. */
export interface CacheEntry {
  /** The tenant the entry belongs to (also part of its key). */
  tenant: string;
  result: ModelResult;
  storedAt: number;
  expiresAt: number;
}

/**
 * Where answers are kept between identical requests. Implementations may
 * answer synchronously (memory, SQLite) or with a promise (a network store);
 * the engine handles both. A store never returns an entry past `expiresAt`.
 */
export interface CacheStore {
  get(key: string, now: number): CacheEntry | undefined | Promise<CacheEntry | undefined>;
  set(key: string, entry: CacheEntry): void | Promise<void>;
  delete(key: string): void | Promise<void>;
  /** Removes every entry of a tenant; returns how many went. */
  clearTenant(tenant: string): number | Promise<number>;
  /** Releases what the store holds open. Safe to call twice. */
  close(): void | Promise<void>;
}

/** Where a request stands with the cache: its key and how long its answer may be kept. */
export interface CachePolicy {
  key: string;
  tenant: string;
  ttlMs: number;
}
