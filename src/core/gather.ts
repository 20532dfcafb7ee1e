import type { FanoutError } from '../contracts/errors.js';
import { isTerminal } from '../contracts/task-state.js';
import type { Task, TaskObserver, TaskOutcome, TaskStatus } from './task.js';
import type { ModelResult } from '../contracts/types.js';

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
  outcomeOf(task: Task): TaskOutcome;
  cancel(id: string): boolean;
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
      this.record(index, this.engine.outcomeOf(task));
      return;
    }
    task.observer = this;
    task.slot = index;
  }

  taskEnded(task: Task, slot: number): void {
    this.record(slot, this.engine.outcomeOf(task));
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
