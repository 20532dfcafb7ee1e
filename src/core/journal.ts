import type { TaskRow, TaskStore, WriteOutcome } from '../store/task-store.js';
import type { Clock } from './clock.js';
import { asFanoutError, type FanoutError } from './errors.js';
import type { Task } from './task.js';

/**
 * How long changes gather before they are written: one commit (and one fsync)
 * per few milliseconds, however many tasks changed in them.
 */
export const FLUSH_DELAY_MS = 5;

/** Default lease of an attempt on its task: as long as an SDK's default timeout. */
export const DEFAULT_LEASE_MS = 10 * 60 * 1000;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/**
 * Writes task changes to a `TaskStore`, grouped: every task that changed is
 * written once per flush, as it stands then, in one transaction. A flush runs
 * `FLUSH_DELAY_MS` after the first change (so a burst of changes, such as a
 * thousand submissions or completions, costs one commit), when asked
 * (`flush`), and on `close`.
 *
 * A write that fails (a full disk, a lost connection) keeps its tasks marked
 * for the next flush and is reported through `onError`; nothing already
 * stored is touched.
 */
export class TaskJournal {
  private dirty = new Set<Task>();
  private cancelTimer?: () => void;
  private writing?: Promise<void>;
  private stopped = false;

  constructor(
    readonly store: TaskStore,
    private readonly clock: Clock,
    private readonly onError: (error: FanoutError) => void,
    private readonly onConflict: (outcome: WriteOutcome) => void,
  ) {}

  /**
   * Marks a task for the next flush. Never writes at once: the engine is in
   * the middle of changing the task, and the row is taken when the flush runs.
   */
  changed(task: Task): void {
    if (this.stopped) return;
    this.dirty.add(task);
    this.cancelTimer ??= this.clock.setTimer(FLUSH_DELAY_MS, () => {
      this.cancelTimer = undefined;
      void this.flush();
    });
  }

  /** Writes what changed. Resolves once the store has it. */
  flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.dirty.size === 0) return this.writing ?? Promise.resolve();
    const tasks = this.dirty;
    this.dirty = new Set();
    const rows = [...tasks].map(toRow);
    const retry = (error: unknown): void => {
      for (const task of tasks) this.dirty.add(task);
      this.onError(asFanoutError(error, 'io_error'));
    };
    try {
      const written = this.store.write(rows, this.clock.now());
      if (isPromise(written)) {
        const pending = written.then((outcome) => this.report(outcome), retry);
        this.writing = pending;
        return pending;
      }
      this.report(written);
    } catch (error) {
      retry(error);
    }
    return Promise.resolve();
  }

  /** Writes what is left and stops recording; later changes are not written. */
  async close(): Promise<void> {
    await this.flush();
    this.stopped = true;
  }

  /** Stops recording without writing: what happens next (a shutdown's cancellations) stays out of the store. */
  detach(): void {
    this.stopped = true;
  }

  private report(outcome: WriteOutcome): void {
    if (outcome.ended.length > 0 || outcome.leased.length > 0) this.onConflict(outcome);
  }
}

/** The row a task is stored as. */
export function toRow(task: Task): TaskRow {
  const row: TaskRow = {
    id: task.id,
    seq: task.seq,
    key: task.key,
    request: task.request,
    state: task.state,
    submittedAt: task.submittedAt,
    readyAt: task.readyAt,
    attempts: task.attempts ?? [],
    queuedMs: task.queuedMs,
    rateLimitedMs: task.rateLimitedMs,
    providerMs: task.providerMs,
  };
  if (task.batch) {
    row.batchId = task.batch.id;
    row.line = task.batch.line;
  }
  if (task.endedAt !== undefined) row.endedAt = task.endedAt;
  if (task.lease) {
    row.leaseAttempt = task.lease.attempt;
    row.leaseUntil = task.lease.until;
  }
  if (task.result) row.result = task.result;
  if (task.error) {
    const { code, message } = task.error;
    row.error = { code, message };
    const status = (task.error as { status?: number }).status;
    if (status !== undefined) row.error.status = status;
  }
  return row;
}
