import type { CacheStore } from '../contracts/cache-store.js';
import { FanoutError } from '../contracts/errors.js';
import { MemoryCacheStore } from '../store/memory/memory-cache-store.js';
import { MemoryTaskStore } from '../store/memory/memory-task-store.js';
import { SqliteCacheStore } from '../store/sqlite/sqlite-cache-store.js';
import { SqliteTaskStore } from '../store/sqlite/sqlite-task-store.js';
import type { TaskStore } from '../contracts/task-store.js';
import type { Limiter } from '../contracts/limiter.js';

export const DEFAULT_STORE = 'sqlite:.fanout/fanout.db';

export interface Stores {
  tasks: TaskStore;
  /** Absent when the cache is off. */
  cache?: CacheStore;
  /** Set with `--redis`: the limits every process on that Redis shares. */
  limiter?: Limiter;
  /** Set when the tasks themselves are in Redis: its URL, for the queue beside them. */
  redisUrl?: string;
  /** Where the data lives, for messages. */
  where: string;
  close(): Promise<void>;
}

/**
 * Opens the stores a `--store` spec names: `sqlite:PATH` (tasks and cached
 * answers in one SQLite file, created on first use) or `memory` (nothing
 * survives the process).
 */
export function openStores(spec: string, withCache: boolean): Stores {
  if (spec === 'memory') {
    const tasks = new MemoryTaskStore();
    const cache = withCache ? new MemoryCacheStore() : undefined;
    return { tasks, cache, where: 'memory', close: async () => undefined };
  }
  if (spec.startsWith('sqlite:') && spec.length > 'sqlite:'.length) {
    const path = spec.slice('sqlite:'.length);
    const tasks = new SqliteTaskStore(path);
    const cache = withCache ? new SqliteCacheStore(tasks.db, path) : undefined;
    return {
      tasks,
      cache,
      where: path,
      close: async () => {
        cache?.close();
        tasks.close();
      },
    };
  }
  throw new FanoutError('invalid_config', `--store: expected "sqlite:PATH" or "memory", received "${spec}"`);
}

/** `url` with any password replaced, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the --redis URL';
  }
}

/** The Redis store classes, loaded only when asked for, after `url` is checked. */
async function redisParts(url: string) {
  if (!/^rediss?:\/\//.test(url)) {
    throw new FanoutError(
      'invalid_config',
      `--redis: expected redis://host:port or rediss://host:port, received "${redactedUrl(url)}"`,
    );
  }
  return import('../store/redis/index.js');
}

/**
 * Everything in Redis (`fanout batch --redis`): the tasks (so that workers on
 * other machines run them from the queue, and a batch resumes from there),
 * the limits and the cache. Fails at once, naming the server, when it cannot be reached.
 */
export async function openRedisStores(url: string, withCache: boolean): Promise<Stores> {
  const { RedisCacheStore, RedisLimiter, RedisTaskStore } = await redisParts(url);
  const limiter = new RedisLimiter({ url });
  const tasks = new RedisTaskStore({ url });
  const cache = withCache ? new RedisCacheStore({ url }) : undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled([limiter.close(), cache?.close(), tasks.close()]);
  };
  try {
    await limiter.ping(REDIS_CONNECT_MS);
  } catch (error) {
    await close();
    throw new FanoutError('invalid_config', `--redis: cannot reach ${redactedUrl(url)}: ${(error as Error).message}`);
  }
  return { tasks, cache, limiter, redisUrl: url, where: `${redactedUrl(url)}, with limits and cache`, close };
}

/** How long `--redis` waits for the server at start before it gives up. */
const REDIS_CONNECT_MS = 5000;
