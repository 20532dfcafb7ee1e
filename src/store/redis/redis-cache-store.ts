import { Redis } from 'ioredis';
import type { CacheEntry, CacheStore } from '../../contracts/cache-store.js';

export interface RedisCacheStoreOptions {
  /** `redis://host:port/db`; or pass `client`. */
  url?: string;
  /** A connected ioredis client to share (the store does not close it). */
  client?: Redis;
  /** Prefix of every key the store writes. Default `fanout:`. */
  prefix?: string;
}

/**
 * Removes a tenant's entries and its index, and counts the entries that were
 * there: one script, so that no entry set meanwhile escapes or is counted twice.
 * KEYS[1] is the tenant's index; ARGV[1] the prefix of entry keys.
 */
const CLEAR_TENANT = `
local keys = redis.call('SMEMBERS', KEYS[1])
local removed = 0
for _, key in ipairs(keys) do
  removed = removed + redis.call('DEL', ARGV[1] .. key)
end
redis.call('DEL', KEYS[1])
return removed
`;

/**
 * Removes one entry and its place in its tenant's index. KEYS[1] is the
 * entry; ARGV[1] the prefix of tenant indexes, ARGV[2] the cache key.
 */
const DELETE_ENTRY = `
local text = redis.call('GET', KEYS[1])
if text then
  redis.call('SREM', ARGV[1] .. cjson.decode(text).tenant, ARGV[2])
  redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * The result cache in Redis, shared by every fanout process that points at
 * it. An entry is a JSON string under `<prefix>cache:<key>`, which Redis
 * drops once its time to live (`expiresAt - storedAt`) has passed; a lookup
 * also compares `expiresAt` with the engine's own clock, so no entry is ever
 * returned past it. Each tenant's keys are indexed in a set, for
 * `clearTenant`, which lives as long as the tenant's longest-lived entry.
 * The engine awaits every call (the contract allows promises).
 */
export class RedisCacheStore implements CacheStore {
  private readonly redis: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private closed = false;

  constructor(options: RedisCacheStoreOptions) {
    if (!options.client && !options.url) throw new Error('RedisCacheStore: give a url or a client');
    this.ownsClient = !options.client;
    this.redis =
      options.client ??
      new Redis(options.url as string, { lazyConnect: false, maxRetriesPerRequest: 3, enableAutoPipelining: true });
    // Each command's promise says when Redis cannot be reached; the connection's own errors would only repeat it.
    if (this.ownsClient) this.redis.on('error', () => undefined);
    this.prefix = options.prefix ?? 'fanout:';
    this.redis.defineCommand('fanoutClearTenant', { numberOfKeys: 1, lua: CLEAR_TENANT });
    this.redis.defineCommand('fanoutDeleteEntry', { numberOfKeys: 1, lua: DELETE_ENTRY });
  }

  private entryKey(key: string): string {
    return `${this.prefix}cache:${key}`;
  }

  private tenantKey(tenant: string): string {
    return `${this.prefix}cache-tenant:${tenant}`;
  }

  async get(key: string, now: number): Promise<CacheEntry | undefined> {
    const text = await this.redis.get(this.entryKey(key));
    if (text === null) return undefined;
    const entry = JSON.parse(text) as CacheEntry;
    return entry.expiresAt > now ? entry : undefined;
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    const ttlMs = Math.max(1, Math.ceil(entry.expiresAt - entry.storedAt));
    const index = this.tenantKey(entry.tenant);
    await this.redis
      .multi()
      .set(this.entryKey(key), JSON.stringify(entry), 'PX', ttlMs)
      .sadd(index, key)
      // The index lives as long as its longest-lived entry: set when it has no expiry, raised when this one lives longer.
      .pexpire(index, ttlMs, 'NX')
      .pexpire(index, ttlMs, 'GT')
      .exec();
  }

  async delete(key: string): Promise<void> {
    await this.script('fanoutDeleteEntry')(this.entryKey(key), `${this.prefix}cache-tenant:`, key);
  }

  async clearTenant(tenant: string): Promise<number> {
    return this.script('fanoutClearTenant')(this.tenantKey(tenant), `${this.prefix}cache:`);
  }

  /** A Lua script defined on the client, as a function of its keys and arguments. */
  private script(name: string): (...args: string[]) => Promise<number> {
    const command = (this.redis as unknown as Record<string, (...args: string[]) => Promise<number>>)[name];
    return (...args) => (command as (...args: string[]) => Promise<number>).apply(this.redis, args);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.redis.quit();
  }
}
