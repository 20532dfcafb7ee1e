import { asFanoutError, type FanoutError } from '../contracts/errors.js';
import { isTerminal } from '../contracts/task-state.js';
import type { Task, TaskObserver, TaskOutcome, TaskStatus } from './task.js';
import type { ModelResult, TaskRequest } from '../contracts/types.js';

export interface GatherOptions {
  /** Reject at the first failure and cancel the rest. Default false: failures are values. */
  failFast?: boolean;
  /** Cancels every task of the gather when aborted. */
  signal?: AbortSignal;
}

/** One entry of a `gather`: the task's outcome, or a request that never became a task. */
export type GatherOutcome =
  TaskOutcome | { id?: undefined; label?: string; ok: false; error: FanoutError; status?: undefined };

/** An ended task as `gather` reports it; `status` is computed on first read. */
export class Outcome {
  readonly id: string;
  readonly label?: string;
  readonly ok: boolean;
  readonly result?: ModelResult;
  readonly error?: FanoutError;
  private snapshot?: TaskStatus;

  constructor(
    private readonly task: Task,
    private readonly at: number,
  ) {
    this.id = task.id;
    this.label = task.request.label;
    this.ok = task.state === 'completed';
    if (this.ok) this.result = task.result;
    else this.error = task.error;
  }

  get status(): TaskStatus {
    return (this.snapshot ??= this.task.status(this.at));
  }
}

/** What a gather needs of the engine whose tasks it follows. */
export interface GatherHost {
  /** Makes a task of a request; throws on a request that cannot be one. */
  createTask(request: TaskRequest): Task;
  cancel(id: string): boolean;
  now(): number;
}

/**
 * Makes a task of each item (`toRequest(item)`) and resolves with their
 * outcomes in input order; an item that cannot become a task is a failed
 * outcome in its place.
 */
export function gatherTasks<T>(
  host: GatherHost,
  items: readonly T[],
  toRequest: (item: T, index: number) => TaskRequest,
  options: GatherOptions,
): Promise<GatherOutcome[]> {
  return new Promise((resolve, reject) => {
    const gather = new Gather(host, items.length, options, resolve, reject);
    options.signal?.addEventListener('abort', () => gather.cancelAll(), { once: true });
    for (let index = 0; index < items.length; index++) {
      let task: Task;
      try {
        task = host.createTask(toRequest(items[index] as T, index));
      } catch (error) {
        gather.record(index, { ok: false, error: asFanoutError(error, 'invalid_request') });
        continue;
      }
      gather.follow(task, index);
    }
    if (options.signal?.aborted) gather.cancelAll();
    gather.submitted();
  });
}

/** The outcome of an ended task; its `status` is computed when first read. */
export function outcomeOf(task: Task, now: number): TaskOutcome {
  return new Outcome(task, task.endedAt ?? now) as unknown as TaskOutcome;
}

/** Follows the tasks of one `gather` and settles its promise. */
export class Gather implements TaskObserver {
  private readonly outcomes: GatherOutcome[];
  private readonly tasks: Task[] = [];
  private remaining: number;
  private settled = false;
  private allSubmitted = false;

  constructor(
    private readonly engine: GatherHost,
    count: number,
    private readonly options: GatherOptions,
    private readonly resolve: (outcomes: GatherOutcome[]) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.outcomes = new Array<GatherOutcome>(count);
    this.remaining = count;
  }

  follow(task: Task, index: number): void {
    // Only a gather that may cancel its tasks needs to know them all.
    if (this.options.failFast || this.options.signal) this.tasks.push(task);
    if (isTerminal(task.state)) {
      this.record(index, outcomeOf(task, this.engine.now()));
      return;
    }
    task.observer = this;
    task.slot = index;
  }

  taskEnded(task: Task, slot: number): void {
    this.record(slot, outcomeOf(task, this.engine.now()));
  }

  record(index: number, outcome: GatherOutcome): void {
    this.outcomes[index] = outcome;
    this.remaining -= 1;
    if (this.settled) return;
    if (!outcome.ok && this.options.failFast) {
      this.settled = true;
      this.cancelAll();
      this.reject(outcome.error);
    } else if (this.remaining === 0 && this.allSubmitted) {
      this.settled = true;
      this.resolve(this.outcomes);
    }
  }

  /** Every request has been turned into a task or an outcome. */
  submitted(): void {
    this.allSubmitted = true;
    if (this.remaining === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.outcomes);
    }
  }

  cancelAll(): void {
    for (const task of this.tasks) this.engine.cancel(task.id);
  }
}
