import type { AttemptRecord, ErrorCode } from './errors.js';
import type { TaskState } from './task-state.js';
import type { ModelResult, TaskRequest } from './types.js';

/** A task as a store keeps it: enough to show its status and to run it again after a restart. */
export interface TaskRow {
  id: string;
  /** Submission order within the engine that made it. */
  seq: number;
  /** The batch and input line it answers, for `fanout batch` to resume. */
  batchId?: string;
  line?: number;
  /** The limit key it is charged to. */
  key: string;
  request: TaskRequest;
  state: TaskState;
  submittedAt: number;
  /** Earliest time its next attempt may start (a retry wait); 0 when none. */
  readyAt: number;
  endedAt?: number;
  attempts: AttemptRecord[];
  queuedMs: number;
  rateLimitedMs: number;
  providerMs: number;
  /**
   * Kept by a queue (`TaskQueue`) for its workers to run: true until a worker
   * first writes the task (an engine's rows do not carry it). A task kept by
   * a queue but never queued is queued again; one an engine keeps for itself
   * is never handed to a worker.
   */
  queued?: boolean;
  /** The attempt that holds the task while it is processing, and until when (epoch ms). */
  leaseAttempt?: string;
  leaseUntil?: number;
  result?: ModelResult;
  error?: {
    code: ErrorCode;
    message: string;
    retryable?: boolean;
    provider?: string;
    status?: number;
    retryAfterMs?: number;
  };
}

/**
 * A batch or pipeline run sent to the server, kept beside its tasks so that
 * its id answers after a restart and an unfinished one can resume.
 */
export interface StoredRecord {
  id: string;
  kind: 'batch' | 'run';
  tenant: string;
  createdAt: number;
  /** `running` until it has ended (`completed`, `failed`, `cancelled`). */
  state: string;
  /** The record's own details (a batch's invalid lines, a run's pipeline, inputs and finished steps). */
  data: unknown;
}

export const TERMINAL_STATES: readonly TaskState[] = ['completed', 'failed', 'cancelled'];

/** What a `write` did not apply, and why. */
export interface WriteOutcome {
  /** Rows refused because the stored task had ended: an ended task never changes. */
  ended: string[];
  /** Rows refused because another attempt holds the task's lease. */
  leased: string[];
  /**
   * Rows that could not be turned into what the store keeps (JSON nested too
   * deep for the serializer, a value JSON cannot hold). They are not written;
   * every other row of the same write is. Absent when there were none.
   */
  unwritable?: string[];
}

/**
 * Durable task records. A write is applied whole, in one transaction, and
 * never changes a task that has ended; a row whose `leaseAttempt` differs from
 * a stored processing task's live lease is refused, so a result is committed
 * only by the attempt that holds the task, and a task is never completed twice.
 *
 * One contract suite (test/contracts/task-store.contract.ts) runs against
 * every implementation.
 */
export interface TaskStore {
  /** Inserts or updates `rows` (their current state), as of `now`. */
  write(rows: readonly TaskRow[], now: number): WriteOutcome | Promise<WriteOutcome>;
  get(id: string): TaskRow | undefined | Promise<TaskRow | undefined>;
  /** The tasks of a batch, by line. */
  listBatch(batchId: string): TaskRow[] | Promise<TaskRow[]>;
  /** Forgets every task of a batch (a batch started over); returns how many went. */
  deleteBatch(batchId: string): number | Promise<number>;
  /**
   * Every task that has not ended, in submission order, after a restart: a
   * task left processing by a process that is gone goes back to queued (its
   * attempt is recorded as lost), and rate-limited ones keep their `readyAt`.
   */
  recover(now: number): TaskRow[] | Promise<TaskRow[]>;
  /** Inserts or replaces a batch or run record. */
  putRecord(record: StoredRecord): void | Promise<void>;
  getRecord(id: string): StoredRecord | undefined | Promise<StoredRecord | undefined>;
  /** Records of `kind` still `running`, oldest first: what a restart resumes. */
  openRecords(kind: StoredRecord['kind']): StoredRecord[] | Promise<StoredRecord[]>;
  /**
   * Forgets what ended before `before` (epoch ms): ended tasks, and records
   * that are no longer running together with their batches' tasks. Nothing
   * unfinished is touched. Returns how many tasks and records went.
   */
  prune(before: number): { tasks: number; records: number } | Promise<{ tasks: number; records: number }>;
  /**
   * Gives back memory held only for speed (SQLite's page cache, up to 16 MB
   * a connection): a long-running process calls it when it goes quiet.
   */
  trimMemory?(): void;
  /** Releases what the store holds open. Safe to call twice. */
  close(): void | Promise<void>;
}
