import type BetterSqlite3 from 'better-sqlite3';
import type { CacheEntry, CacheStore } from '../../contracts/cache-store.js';
import type { ModelResult } from '../../contracts/types.js';
import { describeSqliteError, openDatabase } from './database.js';

interface Row {
  tenant: string;
  stored_at: number;
  expires_at: number;
  result: string;
}

/** How often, in the engine's time, storing an answer also deletes the rows past their expiry. */
export const SWEEP_EVERY_MS = 60_000;

/**
 * The result cache in a SQLite file (the same file as the task store, by
 * default). Lookups ignore rows past their expiry; storing an answer also
 * deletes them, at most once every `SWEEP_EVERY_MS` of the entries' own time
 * (an index on `expires_at` keeps that cheap), so a long-running server's file
 * holds what is live rather than every answer it ever gave.
 */
export class SqliteCacheStore implements CacheStore {
  private readonly db: BetterSqlite3.Database;
  private readonly ownsDb: boolean;
  private readonly selectOne: BetterSqlite3.Statement<[string, number], Row>;
  private readonly upsert: BetterSqlite3.Statement<[string, string, number, number, string]>;
  private readonly deleteOne: BetterSqlite3.Statement<[string]>;
  private readonly deleteTenant: BetterSqlite3.Statement<[string]>;
  private readonly deleteExpired: BetterSqlite3.Statement<[number]>;
  private sweptAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  /** Opens `path` (created if missing), or shares an already open fanout database. */
  constructor(
    source: string | BetterSqlite3.Database,
    private readonly path = typeof source === 'string' ? source : source.name,
  ) {
    this.ownsDb = typeof source === 'string';
    this.db = typeof source === 'string' ? openDatabase(source) : source;
    this.selectOne = this.db.prepare(
      'SELECT tenant, stored_at, expires_at, result FROM cache WHERE key = ? AND expires_at > ?',
    );
    this.upsert = this.db.prepare(
      'INSERT INTO cache (key, tenant, stored_at, expires_at, result) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET tenant = excluded.tenant, stored_at = excluded.stored_at, expires_at = excluded.expires_at, result = excluded.result',
    );
    this.deleteOne = this.db.prepare('DELETE FROM cache WHERE key = ?');
    this.deleteTenant = this.db.prepare('DELETE FROM cache WHERE tenant = ?');
    this.deleteExpired = this.db.prepare('DELETE FROM cache WHERE expires_at <= ?');
  }

  get(key: string, now: number): CacheEntry | undefined {
    const row = this.run(() => this.selectOne.get(key, Math.floor(now)));
    if (!row) return undefined;
    return {
      tenant: row.tenant,
      storedAt: row.stored_at,
      expiresAt: row.expires_at,
      result: JSON.parse(row.result) as ModelResult,
    };
  }

  set(key: string, entry: CacheEntry): void {
    const { rateLimit: _dropped, ...result } = entry.result;
    this.run(() =>
      this.upsert.run(
        key,
        entry.tenant,
        Math.floor(entry.storedAt),
        Math.ceil(entry.expiresAt),
        JSON.stringify(result),
      ),
    );
    if (entry.storedAt - this.sweptAt >= SWEEP_EVERY_MS) {
      this.sweptAt = entry.storedAt;
      this.run(() => this.deleteExpired.run(Math.floor(entry.storedAt)));
    }
  }

  delete(key: string): void {
    this.run(() => this.deleteOne.run(key));
  }

  clearTenant(tenant: string): number {
    return this.run(() => this.deleteTenant.run(tenant).changes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDb) this.db.close();
  }

  private run<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw describeSqliteError(this.path, error);
    }
  }
}
