import type { Clock } from '../contracts/clock.js';
import type { TaskStore } from '../contracts/task-store.js';
import type { ModelResult, TaskRequest, Usage } from '../contracts/types.js';
import type { SubmitOptions, TaskHandle } from './engine-options.js';
import type { EngineEvent, EventStreamOptions, TaskEvent } from './events.js';
import type { TaskStatus } from './task.js';

/**
 * Where tasks are run, as the task API, batches, pipeline runs and sockets
 * see it: an engine in this process, or the queue shared through Redis
 * (`QueuedTasks`), whose workers may be on other machines.
 */
export interface TaskService {
  readonly clock: Clock;
  /** Where tasks, batches and runs are kept, when anywhere. */
  readonly store: TaskStore | undefined;
  /** Resolves once tasks an earlier run left are back in hand. */
  readonly recovered: Promise<unknown>;
  /** True when other live processes work on the same store (the queue of a Redis): what it holds is not all this process's. */
  readonly shared?: boolean;
  submit(request: TaskRequest, options?: SubmitOptions): TaskHandle;
  /** Submits under `options.id` unless a task with that id exists: then its handle, and nothing is sent again. */
  submitOnce(request: TaskRequest, options: SubmitOptions & { id: string }): Promise<TaskHandle>;
  result(id: string): Promise<ModelResult>;
  /** The task's state when this process follows it; else undefined (see `find`). */
  status(id: string): TaskStatus | undefined;
  /** The task's state wherever it is kept. */
  find(id: string): Promise<TaskStatus | undefined>;
  /** Cancels a task that has not ended; false when it had ended or is unknown. A service whose tasks run elsewhere resolves once the end is known. */
  cancel(id: string): boolean | Promise<boolean>;
  onTask(taskId: string, listener: (event: TaskEvent) => void): () => void;
  events(options?: EventStreamOptions): AsyncIterableIterator<EngineEvent>;
  /** Resolves once every task submitted so far is kept: true, false if a write failed. */
  written(): Promise<boolean>;
  priceOf(model: string, usage: Usage): number | undefined;
  averageCallMs(model: string): number | undefined;
}
