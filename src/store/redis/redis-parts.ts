import { RedisCacheStore } from './redis-cache-store.js';
import { RedisLimiter, type RedisLimiterOptions } from './redis-limiter.js';
import { RedisTaskStore } from './redis-task-store.js';

export interface RedisPartsOptions extends Pick<RedisLimiterOptions, 'holdMs' | 'slotTtlMs' | 'onError'> {
  /** `redis://host:port/db` (`rediss://` for TLS). */
  url: string;
  /** Prefix of every key and channel. Default `fanout:`. */
  prefix?: string;
}

/**
 * The limits, task store and result cache every process on one Redis
 * shares, for `createEngine({ redis })`: a `RedisLimiter`, a
 * `RedisTaskStore` and a `RedisCacheStore` on the same Redis and prefix.
 */
export function redisParts(options: RedisPartsOptions): {
  limiter: RedisLimiter;
  store: RedisTaskStore;
  cache: RedisCacheStore;
  close(): Promise<void>;
} {
  const { url, prefix, ...limits } = options;
  const limiter = new RedisLimiter({ url, ...(prefix ? { prefix } : {}), ...limits });
  const store = new RedisTaskStore({ url, ...(prefix ? { prefix } : {}) });
  const cache = new RedisCacheStore({ url, ...(prefix ? { prefix } : {}) });
  return {
    limiter,
    store,
    cache,
    close: async () => {
      await Promise.allSettled([limiter.close(), store.close(), cache.close()]);
    },
  };
}
