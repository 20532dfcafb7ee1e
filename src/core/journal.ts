import type { TaskRow, TaskStore, WriteOutcome } from '../contracts/task-store.js';
import type { Clock } from '../contracts/clock.js';
import { asFanoutError, type FanoutError } from '../contracts/errors.js';
import type { Task } from './task.js';

/**
 * How long changes gather before they are written: one commit (and one fsync)
 * per few milliseconds, however many tasks changed in them.
 */
export const FLUSH_DELAY_MS = 5;

/** How long after a failed write the journal tries again by itself. */
export const RETRY_DELAY_MS = 1000;

/** Default lease of an attempt on its task: as long as an SDK's default timeout. */
export const DEFAULT_LEASE_MS = 10 * 60 * 1000;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** What the journal tells its engine. */
export interface TaskJournalOptions {
  store: TaskStore;
  clock: Clock;
  /** A write failed as a whole (a full disk, a lost connection); its tasks wait for the next flush. */
  onError: (error: FanoutError) => void;
  /** The store kept its own record of some rows (an ended task, another attempt's lease). */
  onConflict: (outcome: WriteOutcome) => void;
  /** These tasks could not be serialised: they were not written and will not be. */
  onUnwritable: (tasks: Task[]) => void;
}

/** How the store's writes are going: `ok` until a write fails, and again after one succeeds. */
export interface StoreHealth {
  ok: boolean;
  /** The last failure, while writes are failing. */
  error?: { code: string; message: string };
  /** When writes started failing (engine clock, epoch ms). */
  failingSince?: number;
}

/**
 * Writes task changes to a `TaskStore`, grouped: every task that changed is
 * written once per flush, as it stands then, in one transaction. A flush runs
 * `FLUSH_DELAY_MS` after the first change (so a burst of changes, such as a
 * thousand submissions or completions, costs one commit), when asked
 * (`flush`), and on `close`.
 *
 * A write that fails (a full disk, a lost connection) keeps its tasks marked
 * for the next flush, is reported through `onError` and shows in `health`
 * until a write succeeds; nothing already stored is touched. A row that
 * cannot be serialised fails only its own task (`onUnwritable`), which is
 * then left out of every later write.
 */
export class TaskJournal {
  readonly store: TaskStore;
  private dirty = new Set<Task>();
  private cancelTimer?: () => void;
  private writing?: Promise<void>;
  private stopped = false;
  private failing?: { error: FanoutError; since: number };
  private writeWaiters: Array<(ok: boolean) => void> = [];

  constructor(private readonly options: TaskJournalOptions) {
    this.store = options.store;
  }

  get health(): StoreHealth {
    if (!this.failing) return { ok: true };
    const { error, since } = this.failing;
    return { ok: false, error: { code: error.code, message: error.message }, failingSince: since };
  }

  /**
   * Marks a task for the next flush. Never writes at once: the engine is in
   * the middle of changing the task, and the row is taken when the flush runs.
   */
  changed(task: Task): void {
    if (this.stopped) return;
    this.dirty.add(task);
    this.cancelTimer ??= this.options.clock.setTimer(FLUSH_DELAY_MS, () => {
      this.cancelTimer = undefined;
      void this.flush();
    });
  }

  /**
   * Resolves once every change so far is in the store, with the group write
   * that takes it (no commit of its own): true, or false if that write failed.
   */
  written(): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    if (this.dirty.size === 0)
      return this.writing
        ? this.writing.then(() => this.failing === undefined)
        : Promise.resolve(this.failing === undefined);
    return new Promise((resolve) => this.writeWaiters.push(resolve));
  }

  /** Writes what changed. Resolves once the store has it. */
  flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.dirty.size === 0) return this.writing ?? Promise.resolve();
    const tasks = this.dirty;
    this.dirty = new Set();
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    const rows = [...tasks].map(toRow);
    const retry = (error: unknown): void => {
      for (const task of tasks) this.dirty.add(task);
      const failure = asFanoutError(error, 'io_error');
      this.failing = { error: failure, since: this.failing?.since ?? this.options.clock.now() };
      this.options.onError(failure);
      for (const resolve of waiters) resolve(false);
      // Try again even if nothing else changes: a disk that had no room may have some now.
      if (!this.stopped) {
        this.cancelTimer ??= this.options.clock.setTimer(RETRY_DELAY_MS, () => {
          this.cancelTimer = undefined;
          void this.flush();
        });
      }
    };
    const done = (outcome: WriteOutcome): void => {
      this.report(outcome, tasks);
      for (const resolve of waiters) resolve(true);
    };
    try {
      const written = this.store.write(rows, this.options.clock.now());
      if (isPromise(written)) {
        const pending = written.then(done, retry);
        this.writing = pending;
        return pending;
      }
      done(written);
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

  private report(outcome: WriteOutcome, tasks: ReadonlySet<Task>): void {
    this.failing = undefined;
    if (outcome.ended.length > 0 || outcome.leased.length > 0) this.options.onConflict(outcome);
    if (!outcome.unwritable?.length) return;
    const ids = new Set(outcome.unwritable);
    const lost = [...tasks].filter((task) => ids.has(task.id));
    for (const task of lost) task.journal = undefined;
    this.options.onUnwritable(lost);
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
  // What the task's status shows of its error, no more (a RetryError's attempts are the row's own).
  if (task.error) row.error = errorRow(task.error.toJSON());
  return row;
}

/** An error as a row keeps it: the fields of `toJSON` that are set. */
function errorRow(
  error: ReturnType<FanoutError['toJSON']> & { provider?: string; status?: number; retryAfterMs?: number },
): NonNullable<TaskRow['error']> {
  const row: NonNullable<TaskRow['error']> = { code: error.code, message: error.message, retryable: error.retryable };
  if (error.provider !== undefined) row.provider = error.provider;
  if (error.status !== undefined) row.status = error.status;
  if (error.retryAfterMs !== undefined) row.retryAfterMs = error.retryAfterMs;
  return row;
}
