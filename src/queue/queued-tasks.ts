import type { Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import type { TaskRow } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import type { ModelResult, TaskRequest, Usage } from '../contracts/types.js';
import type { SubmitOptions, TaskHandle } from '../core/engine-options.js';
import { EventHub, isEnd, type EngineEvent, type EventStreamOptions, type TaskEvent } from '../core/events.js';
import { resultOfEnd, statusFromRow, type TaskStatus } from '../core/task.js';
import type { TaskService } from '../core/task-service.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';
import type { FedEvent } from './task-feed.js';
import type { TaskQueue } from './task-queue.js';

export interface QueuedTasksOptions {
  queue: TaskQueue;
  /** The queue's store. */
  store: RedisTaskStore;
  clock: Clock;
  /** Prices and call times for pipelines: this process's engine, configured as the workers are. */
  pricing?: Pick<TaskService, 'priceOf' | 'averageCallMs'>;
  /** Ended tasks whose status is kept in memory; older ones are read from the store. Default 1,000. */
  maxEnded?: number;
  /** How long a cancellation waits for the worker running the task to say it ended. Default 2,000 ms. */
  cancelWaitMs?: number;
}

/** What this process knows of a task it submitted or follows. */
interface Mirror {
  status: TaskStatus;
  ended: Promise<TaskStatus>;
  settle(status: TaskStatus): void;
}

/**
 * The task service of a process whose tasks are run by the workers of a
 * Redis (`fanout serve --redis`): a task submitted here is kept in the Redis
 * task store and queued, whichever worker takes it tells its events through
 * the task feed, and this process tells them to its own listeners. A task's
 * end is also read from the store when the queue says its job ended, so an
 * event lost while Redis was away never leaves a listener waiting. Any
 * process of the Redis can follow, read or cancel any task.
 */
export class QueuedTasks implements TaskService {
  readonly clock: Clock;
  readonly recovered: Promise<unknown> = Promise.resolve(0);
  readonly shared = true;
  private readonly queue: TaskQueue;
  private readonly tasks: RedisTaskStore;
  private readonly hub = new EventHub();
  private readonly mirrors = new Map<string, Mirror>();
  /** Ids of ended mirrors, oldest first: forgotten beyond `maxEnded`. */
  private readonly endedIds = new Set<string>();
  private readonly maxEnded: number;
  private readonly cancelWaitMs: number;
  private readonly pricing: QueuedTasksOptions['pricing'];
  /** Resolves once this process hears the task feed. */
  readonly ready: Promise<unknown>;

  constructor(options: QueuedTasksOptions) {
    this.queue = options.queue;
    this.tasks = options.store;
    this.clock = options.clock;
    this.pricing = options.pricing;
    this.maxEnded = options.maxEnded ?? 1_000;
    this.cancelWaitMs = options.cancelWaitMs ?? 2_000;
    this.ready = this.queue.feed.onEvent((fed) => this.heard(fed));
    // A feed closed before it listened rejects `ready` for whoever awaits it; nobody else need.
    this.ready.catch(() => undefined);
  }

  get store(): RedisTaskStore {
    return this.tasks;
  }

  submit(request: TaskRequest, options: SubmitOptions = {}): TaskHandle {
    const row = this.queue.enqueue(request, options);
    return this.handle(this.mirror(row));
  }

  async submitOnce(request: TaskRequest, options: SubmitOptions & { id: string }): Promise<TaskHandle> {
    const known = this.mirrors.get(options.id);
    if (known) return this.handle(known);
    const row = await this.tasks.get(options.id);
    if (!row) return this.submit(request, options);
    // Kept by an earlier process: followed from here, and queued again in case its job went with that process.
    if (!isTerminal(row.state)) await this.queue.requeue([row.id]);
    return this.handle(this.mirrors.get(row.id) ?? this.mirror(row));
  }

  async result(id: string): Promise<ModelResult> {
    const mirror = this.mirrors.get(id) ?? (await this.watch(id));
    if (!mirror) throw new FanoutError('unknown_task', `no task with id ${id}`);
    return resultOfEnd(id, await mirror.ended);
  }

  status(id: string): TaskStatus | undefined {
    return this.mirrors.get(id)?.status;
  }

  async find(id: string): Promise<TaskStatus | undefined> {
    return this.mirrors.get(id)?.status ?? this.queue.find(id);
  }

  /**
   * Cancels the task wherever it is: a task no worker holds yet is ended in
   * the store at once (its job then finds it ended); the worker running one
   * is told to cancel it. Resolves once the end is known here, or after
   * `cancelWaitMs`: false when the task had ended or is unknown.
   */
  async cancel(id: string): Promise<boolean> {
    const mirror = this.mirrors.get(id) ?? (await this.watch(id));
    if (!mirror || isTerminal(mirror.status.state)) return false;
    await this.cancelEverywhere(id);
    let stop: (() => void) | undefined;
    const late = new Promise<void>((resolve) => (stop = this.clock.setTimer(this.cancelWaitMs, resolve)));
    await Promise.race([mirror.ended, late]).finally(() => stop?.());
    return true;
  }

  private async cancelEverywhere(id: string): Promise<void> {
    await this.queue.written();
    await this.queue.feed.cancel(id).catch(() => undefined);
    const row = await this.tasks.get(id).catch(() => undefined);
    if (!row || isTerminal(row.state)) return;
    const now = this.clock.now();
    const cancelled: TaskRow = {
      ...row,
      state: 'cancelled',
      endedAt: now,
      error: { code: 'cancelled', message: `task ${id} was cancelled`, retryable: false },
    };
    // Refused when a worker holds the task: that worker ends it on hearing the cancellation.
    const outcome = await this.tasks.write([cancelled], now).catch(() => undefined);
    if (outcome && !outcome.leased?.includes(id) && !outcome.ended?.includes(id)) this.ended(id, cancelled);
  }

  onTask(taskId: string, listener: (event: TaskEvent) => void): () => void {
    if (!this.mirrors.has(taskId)) void this.watch(taskId);
    return this.hub.onTask(taskId, listener);
  }

  events(options: EventStreamOptions = {}): AsyncIterableIterator<EngineEvent> {
    for (const id of options.taskIds ?? []) if (!this.mirrors.has(id)) void this.watch(id);
    return this.hub.stream(options);
  }

  written(): Promise<boolean> {
    return this.queue.written();
  }

  priceOf(model: string, usage: Usage): number | undefined {
    return this.pricing?.priceOf(model, usage);
  }

  averageCallMs(model: string): number | undefined {
    return this.pricing?.averageCallMs(model);
  }

  /** Ends every stream of events; the queue is closed by its owner. */
  close(): void {
    this.hub.close();
  }

  /** A task not submitted here, followed from its stored row. */
  private async watch(id: string): Promise<Mirror | undefined> {
    const row = await this.tasks.get(id).catch(() => undefined);
    if (!row) return undefined;
    return this.mirrors.get(id) ?? this.mirror(row);
  }

  /** Starts following the task of `row` here: its events from the feed, its end from the queue as well. */
  private mirror(row: TaskRow): Mirror {
    let settle!: (status: TaskStatus) => void;
    const ended = new Promise<TaskStatus>((resolve) => (settle = resolve));
    // Not ended until `finish` says so, even when the row has: the end is told the same way either way.
    const mirror: Mirror = { status: { ...statusFromRow(row), state: 'queued' }, ended, settle };
    this.mirrors.set(row.id, mirror);
    if (isTerminal(row.state)) {
      this.ended(row.id, row);
      return mirror;
    }
    mirror.status.state = row.state;
    this.queue.ended(row.id).then(
      (end) => this.ended(row.id, end),
      (error: unknown) => this.lost(row.id, error),
    );
    return mirror;
  }

  /** A task that could not be kept or queued, or whose row is gone: it ends failed here, with the reason. */
  private lost(id: string, error: unknown): void {
    const mirror = this.mirrors.get(id);
    if (!mirror || isTerminal(mirror.status.state)) return;
    const e = asFanoutError(error, 'io_error');
    this.finish(id, {
      ...mirror.status,
      state: 'failed',
      endedAt: this.clock.now(),
      error: { code: e.code, message: e.message, retryable: e.retryable },
    });
  }

  /** The task's end as its stored row says, told as an event unless the feed told it first. */
  private ended(id: string, row: TaskRow): void {
    this.finish(id, statusFromRow(row));
  }

  private heard({ event, status }: FedEvent): void {
    const mirror = this.mirrors.get(event.taskId);
    if (mirror) {
      if (isTerminal(mirror.status.state)) return;
      if (isEnd(event) && status) return this.finish(event.taskId, status, event);
      mirror.status = {
        ...mirror.status,
        state: event.state,
        eta: event.type === 'task-rate-limited' ? event.eta : undefined,
      };
    }
    this.hub.emit(event);
  }

  /** Ends the mirror of `id` with `status` and tells its end (`event`, or one made from the status). */
  private finish(id: string, status: TaskStatus, event?: TaskEvent): void {
    const mirror = this.mirrors.get(id);
    if (!mirror || isTerminal(mirror.status.state)) return;
    mirror.status = status;
    mirror.settle(status);
    this.endedIds.add(id);
    for (const old of this.endedIds) {
      if (this.endedIds.size <= this.maxEnded) break;
      this.endedIds.delete(old);
      this.mirrors.delete(old);
    }
    this.hub.emit(event ?? endEvent(status));
  }

  private handle(mirror: Mirror): TaskHandle {
    const id = mirror.status.id;
    return {
      id,
      result: () => this.result(id),
      status: () => mirror.status,
      cancel: () => {
        if (isTerminal(mirror.status.state)) return false;
        void this.cancel(id);
        return true;
      },
      events: () =>
        isTerminal(mirror.status.state) ? EventHub.ended() : this.hub.stream({ taskIds: [id], until: isEnd }),
    };
  }
}

/** The last event of a task, made from its final status. */
function endEvent(status: TaskStatus): TaskEvent {
  const base = {
    at: status.endedAt ?? 0,
    taskId: status.id,
    key: status.key,
    ...(status.label === undefined ? {} : { label: status.label }),
  };
  const error = { code: status.error?.code ?? 'cancelled', message: status.error?.message ?? 'cancelled' };
  if (status.state === 'completed' && status.result)
    return { ...base, type: 'task-completed', state: 'completed', result: status.result };
  if (status.state === 'failed') return { ...base, type: 'task-failed', state: 'failed', error };
  return { ...base, type: 'task-cancelled', state: 'cancelled', error };
}
