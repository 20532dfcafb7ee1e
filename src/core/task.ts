import type { Cost, Reservation } from '../contracts/limiter.js';
import type { CallContext } from '../contracts/provider.js';
import type { CachePolicy } from '../contracts/cache-store.js';
import type { TaskRow } from '../contracts/task-store.js';
import type { Clock } from '../contracts/clock.js';
import type { ResolvedModel } from './models.js';
import { FanoutError, ProviderError, type AttemptRecord } from '../contracts/errors.js';
import { assertTransition, type TaskState } from '../contracts/task-state.js';
import type { ModelResult, TaskRequest, Usage } from '../contracts/types.js';
import type { WatchedCall } from './watchdog.js';

/** Told of every change of a task, to keep it (the engine's journal, when it has a store). */
export interface TaskChanges {
  changed(task: Task): void;
}

/** Time a task spent in each waiting or working state, in milliseconds. */
export interface TimeSplit {
  /** Waiting for its turn or a free worker. */
  queuedMs: number;
  /** Held back by a rate-limit permit or a retry wait. */
  rateLimitedMs: number;
  /** In provider calls, all attempts together. */
  providerMs: number;
  /** Submission to the end (or to now, while running). */
  totalMs: number;
}

/** A task as callers see it: a copy, safe to keep. */
export interface TaskStatus {
  id: string;
  label?: string;
  model: string;
  /** Whose task it is (the request's tenant, else "default"). */
  tenant: string;
  /** The limit key the task is charged to. */
  key: string;
  priority: number;
  state: TaskState;
  submittedAt: number;
  endedAt?: number;
  /** While rate_limited: when the task expects to go again (epoch ms). */
  eta?: number;
  attempts: AttemptRecord[];
  usage?: Usage;
  timing: TimeSplit;
  result?: ModelResult;
  error?: ReturnType<FanoutError['toJSON']>;
}

/** Settled outcome of one task, as `gather` hands it back. */
export type TaskOutcome =
  | { id: string; label?: string; ok: true; result: ModelResult; status: TaskStatus }
  | { id: string; label?: string; ok: false; error: FanoutError; status: TaskStatus };

/**
 * The engine's record of one task. Fields that most tasks never need
 * (attempts, result, waiters) stay undefined until used, to keep a queued
 * task small.
 */
export class Task {
  state: TaskState = 'submitted';
  enteredAt: number;
  queuedMs = 0;
  rateLimitedMs = 0;
  providerMs = 0;
  attempts?: AttemptRecord[];
  cost!: Cost;
  reservation?: Reservation;
  /** The batch and input line this task answers, when a batch submitted it. */
  batch?: { id: string; line: number };
  /** The attempt holding the task in the store while it is processing. */
  lease?: { attempt: string; until: number };
  /** Told of every state change, when the engine keeps tasks in a store. */
  journal?: TaskChanges;
  /** Set when the task may use the result cache and single-flight. */
  cache?: CachePolicy;
  /** The model's provider, limit key and accounting, resolved once at submission (or recovery). */
  model!: ResolvedModel;
  /** The attempt in flight, while processing. */
  current?: Attempt;
  eta?: number;
  /** When a retry wait ends (epoch ms). */
  readyAt = 0;
  deadlineAt: number;
  endedAt?: number;
  result?: ModelResult;
  error?: FanoutError;
  waiters?: Array<(task: Task) => void>;
  observer?: TaskObserver;
  /** The observer's index for this task (its place in a gather). */
  slot = 0;
  cancelDeadline?: () => void;
  /** Higher runs first; copied from the request so the scheduler's comparisons stay cheap. */
  readonly priority: number;
  /** Whose task it is: the request's tenant, else "default". Tenants share limit keys and the worker pool fairly. */
  readonly tenant: string;
  /** The tenant's own permit, while a call holds one (see `EngineOptions.tenants.limits`). */
  tenantReservation?: Reservation;
  /** Charged to the tenant's limits before it was submitted (the gateway's own check): the scheduler charges it no more. */
  tenantCharged?: boolean;

  constructor(
    readonly id: string,
    readonly seq: number,
    readonly request: TaskRequest,
    readonly key: string,
    readonly submittedAt: number,
  ) {
    this.enteredAt = submittedAt;
    this.priority = request.priority ?? 0;
    this.tenant = request.tenant ?? 'default';
    this.deadlineAt = request.deadlineMs === undefined ? Number.POSITIVE_INFINITY : submittedAt + request.deadlineMs;
  }

  /** A task as a store kept it, back in memory after a restart: its ids, order, attempts, time split and retry wait. */
  static fromRow(row: TaskRow, journal?: TaskChanges): Task {
    const batch = row.batchId !== undefined && row.line !== undefined ? { id: row.batchId, line: row.line } : undefined;
    const task = new Task(row.id, row.seq, row.request, row.key, row.submittedAt);
    task.place({ batch }, journal);
    task.attempts = row.attempts;
    task.queuedMs = row.queuedMs;
    task.rateLimitedMs = row.rateLimitedMs;
    task.providerMs = row.providerMs;
    task.readyAt = row.readyAt;
    if (row.leaseAttempt !== undefined) task.lease = { attempt: row.leaseAttempt, until: row.leaseUntil ?? 0 };
    return task;
  }

  /** Where a new task belongs beyond its request: its batch line, its journal, its cache policy; set once, when it is made. */
  place(where: { batch?: Task['batch']; tenantCharged?: boolean }, journal?: TaskChanges, cache?: CachePolicy): void {
    if (where.batch) this.batch = where.batch;
    if (journal) this.journal = journal;
    if (cache) this.cache = cache;
    if (where.tenantCharged) this.tenantCharged = true;
  }

  /** The model the task runs on and the charge it is admitted at. */
  resolve(model: ResolvedModel, cost: Cost): void {
    this.model = model;
    this.cost = cost;
  }

  /** A new charge for a task still waiting for its permit (the key's limits changed); false once it holds one. */
  recharge(cost: Cost): boolean {
    if ((this.state !== 'queued' && this.state !== 'rate_limited') || this.reservation) return false;
    this.cost = cost;
    return true;
  }

  /** Enters `rate_limited` until `eta` (or stays there with a new eta); true when it entered. */
  holdUntil(eta: number, now: number): boolean {
    const entering = this.state !== 'rate_limited';
    if (entering) this.moveTo('rate_limited', now);
    this.eta = eta;
    return entering;
  }

  /** Waits, rate-limited, for a retry at `readyAt`. */
  retryAt(readyAt: number, now: number): void {
    this.readyAt = readyAt;
    this.moveTo('rate_limited', now);
    this.eta = readyAt;
  }

  /** Attempts started so far. */
  get attemptCount(): number {
    return this.attempts?.length ?? 0;
  }

  /**
   * Starts attempt `call.attempt` under `reservation`: records it, takes the
   * store's lease until `leaseUntil` (when the task is kept in a store) and
   * enters `processing`. Returns the attempt's number, from 1.
   */
  beginAttempt(reservation: Reservation, call: Attempt, now: number, leaseUntil: number): number {
    const attempt = call.attempt;
    (this.attempts ??= []).push({ attempt, startedAt: now });
    if (this.journal) this.lease = { attempt: `${this.id}:${attempt}`, until: leaseUntil };
    this.moveTo('processing', now);
    this.reservation = reservation;
    this.current = call;
    return attempt;
  }

  /** Gives up the permits the ended attempt held (the model's and the tenant's), once the caller has settled them. */
  dropPermits(): void {
    this.reservation = undefined;
    this.tenantReservation = undefined;
  }

  /** True while `attempt` is the one running: a late answer of an earlier attempt is ignored. */
  isRunning(attempt: number): boolean {
    return this.state === 'processing' && this.attempts?.length === attempt;
  }

  /** Records how the running attempt ended, and takes its call context off the task. */
  endAttempt(now: number, outcome: AttemptRecord['outcome'], error?: FanoutError, requestId?: string): void {
    const record = this.attempts?.[this.attempts.length - 1];
    if (record) {
      record.endedAt = now;
      record.outcome = outcome;
      if (error) {
        record.error = { code: error.code, message: error.message };
        if (error instanceof ProviderError) {
          if (error.status !== undefined) record.error.status = error.status;
          if (error.retryAfterMs !== undefined) record.error.retryAfterMs = error.retryAfterMs;
          requestId ??= error.requestId;
        }
      }
      if (requestId !== undefined) record.requestId = requestId;
    }
    this.current = undefined;
  }

  /**
   * Ends the task in `state` with its result or error; its deadline timer is
   * stopped. Returns the callbacks waiting for its end, to be called by whoever
   * ended it once the end is told.
   */
  end(
    state: 'completed' | 'failed' | 'cancelled',
    now: number,
    outcome: { result?: ModelResult; error?: FanoutError },
  ): Array<(task: Task) => void> | undefined {
    if (outcome.result) this.result = outcome.result;
    if (outcome.error) this.error = outcome.error;
    this.endedAt = now;
    this.moveTo(state, now);
    this.cancelDeadline?.();
    this.cancelDeadline = undefined;
    const waiters = this.waiters;
    this.waiters = undefined;
    return waiters;
  }

  /** Moves to `to`, adding the time spent in the state it leaves to its bucket. Throws on an illegal move. */
  moveTo(to: TaskState, now: number): void {
    assertTransition(this.id, this.state, to);
    const spent = now - this.enteredAt;
    if (this.state === 'queued') this.queuedMs += spent;
    else if (this.state === 'rate_limited') this.rateLimitedMs += spent;
    else if (this.state === 'processing') this.providerMs += spent;
    this.state = to;
    this.enteredAt = now;
    if (to !== 'rate_limited') this.eta = undefined;
    this.journal?.changed(this);
  }

  timing(now: number): TimeSplit {
    const end = this.endedAt ?? now;
    const open = this.endedAt === undefined ? now - this.enteredAt : 0;
    return {
      queuedMs: this.queuedMs + (this.state === 'queued' ? open : 0),
      rateLimitedMs: this.rateLimitedMs + (this.state === 'rate_limited' ? open : 0),
      providerMs: this.providerMs + (this.state === 'processing' ? open : 0),
      totalMs: end - this.submittedAt,
    };
  }

  status(now: number): TaskStatus {
    return {
      id: this.id,
      label: this.request.label,
      model: this.request.model,
      tenant: this.tenant,
      key: this.key,
      priority: this.priority,
      state: this.state,
      submittedAt: this.submittedAt,
      endedAt: this.endedAt,
      eta: this.eta,
      attempts: this.attempts ? this.attempts.map((a) => ({ ...a })) : [],
      usage: this.result?.usage,
      timing: this.timing(now),
      result: this.result,
      error: this.error?.toJSON(),
    };
  }
}

/**
 * One running attempt, and the context its provider call receives. Its abort
 * signal is made only if the provider asks for it: most calls to a local
 * model never look, and an AbortController per call is a measurable share of
 * the engine's own cost. Aborting before the signal exists records the
 * reason, and a signal made later starts aborted.
 */
export class Attempt implements CallContext, WatchedCall {
  private controller?: AbortController;
  reason?: unknown;
  seenAt: number | undefined = undefined;

  constructor(
    readonly attempt: number,
    readonly clock: Clock,
    readonly startedAt: number,
    readonly firstByteLimitMs: number,
    readonly idleLimitMs: number,
  ) {}

  alive(): void {
    this.seenAt = this.clock.now();
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/** Told once when a task ends; lets `gather` follow many tasks without a closure per task. */
export interface TaskObserver {
  taskEnded(task: Task, slot: number): void;
}

/**
 * The status of a task as a store kept it: what `Task.status` shows of a task
 * in memory, read back from its row (its time split as last written).
 */
/** The answer of a task that has ended: its result when it completed, else the error it ended with. */
export function resultOfEnd(
  id: string,
  end: { state: TaskState; result?: ModelResult; error?: Pick<FanoutError, 'code' | 'message'> },
): ModelResult {
  if (end.state === 'completed' && end.result) return end.result;
  throw new FanoutError(end.error?.code ?? 'cancelled', end.error?.message ?? `task ${id} ${end.state}`);
}

export function statusFromRow(row: TaskRow): TaskStatus {
  const end = row.endedAt ?? row.submittedAt;
  return {
    id: row.id,
    label: row.request.label,
    model: row.request.model,
    tenant: row.request.tenant ?? 'default',
    key: row.key,
    priority: row.request.priority ?? 0,
    state: row.state,
    submittedAt: row.submittedAt,
    endedAt: row.endedAt,
    eta: row.state === 'rate_limited' && row.readyAt > 0 ? row.readyAt : undefined,
    attempts: row.attempts,
    usage: row.result?.usage,
    timing: {
      queuedMs: row.queuedMs,
      rateLimitedMs: row.rateLimitedMs,
      providerMs: row.providerMs,
      totalMs: end - row.submittedAt,
    },
    result: row.result,
    error: row.error && { ...row.error, retryable: row.error.retryable ?? false },
  };
}

/** Most urgent first: higher priority, then earlier submission. */
export function runsBefore(a: Task, b: Task): boolean {
  const pa = a.priority;
  const pb = b.priority;
  return pa !== pb ? pa > pb : a.seq < b.seq;
}
