import type { CacheStore } from '../contracts/cache-store.js';
import { FanoutError } from '../contracts/errors.js';
import { MemoryCacheStore } from '../store/memory/memory-cache-store.js';
import { MemoryTaskStore } from '../store/memory/memory-task-store.js';
import { SqliteCacheStore } from '../store/sqlite/sqlite-cache-store.js';
import { SqliteTaskStore } from '../store/sqlite/sqlite-task-store.js';
import type { TaskStore } from '../contracts/task-store.js';

export const DEFAULT_STORE = 'sqlite:.fanout/fanout.db';

export interface Stores {
  tasks: TaskStore;
  /** Absent when the cache is off. */
  cache?: CacheStore;
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
