import { FanoutError } from '../contracts/errors.js';
import type { TaskRequest } from '../contracts/types.js';
import type { RunnerEngine } from '../batch/batch-runner.js';
import type { SubmitOptions } from '../core/engine-options.js';
import { statusFromRow, type TaskStatus } from '../core/task.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';
import type { TaskQueue } from './task-queue.js';

/**
 * Batch lines run from the queue instead of on one engine: each line is
 * queued (with its batch and line in its row, so a batch resumes from the
 * Redis task store), any worker on the Redis runs it, and its end is read
 * back from the store.
 */
export function queuedRunner(queue: TaskQueue, store: RedisTaskStore): RunnerEngine {
  return {
    submit: (request: TaskRequest, options: SubmitOptions = {}) => ({ id: queue.enqueue(request, options).id }),
    status: () => undefined,
    find: async (id: string): Promise<TaskStatus | undefined> => {
      const row = await store.get(id);
      return row && statusFromRow(row);
    },
    result: async (id: string) => {
      const row = await queue.ended(id);
      if (row.state === 'completed' && row.result) return row.result;
      throw new FanoutError(row.error?.code ?? 'cancelled', row.error?.message ?? `task ${id} ${row.state}`);
    },
    recovered: Promise.resolve(0),
  };
}
