import type { TaskRequest } from '../contracts/types.js';
import type { RunnerEngine } from '../batch/batch-runner.js';
import type { SubmitOptions } from '../core/engine-options.js';
import { resultOfEnd } from '../core/task.js';
import type { TaskQueue } from './task-queue.js';

/**
 * Batch lines run from the queue instead of on one engine: each line is
 * queued (with its batch and line in its row, so a batch resumes from the
 * Redis task store), any worker on the Redis runs it, and its end is read
 * back from the store.
 */
export function queuedRunner(queue: TaskQueue): RunnerEngine {
  return {
    submit: (request: TaskRequest, options: SubmitOptions = {}) => ({ id: queue.enqueue(request, options).id }),
    status: () => undefined,
    find: (id: string) => queue.find(id),
    result: async (id: string) => {
      return resultOfEnd(id, await queue.ended(id));
    },
    recovered: Promise.resolve(0),
  };
}
