import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { SystemClock, type Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { createIdGenerator } from '../contracts/random.js';
import type { TaskRow } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import type { TaskRequest } from '../contracts/types.js';
import type { Engine } from '../core/engine.js';
import { validateTaskRequest } from '../core/validate.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';

export interface TaskQueueOptions {
  /** The Redis the queue and `store` live in: `redis://host:port/db`. */
  url: string;
  /** Where the tasks' rows are kept; on the same Redis. */
  store: RedisTaskStore;
  /** Prefix of the queue's keys (BullMQ's). Default `fanout:`, beside the store's. */
  prefix?: string;
  clock?: Clock;
  /**
   * Milliseconds a worker holds a task without renewing its hold; a worker
   * that dies lets go of its tasks after this (BullMQ's lock), and another
   * takes them within a second more. Default 10,000.
   */
  leaseMs?: number;
}

export interface WorkerOptions {
  /** Tasks this worker runs at once. Default 64. */
  concurrency?: number;
}

const QUEUE = 'tasks';
/** How often a worker looks whether a task's end is stored yet, while it is not. */
const STORE_RETRY_MS = 200;
/** How often `ended` reads a task again without having been told it ended. */
const LOOK_AGAIN_MS = 5000;

/**
 * Work shared through Redis: any process submits tasks (their rows go to the
 * Redis task store, their ids to a BullMQ queue), any number of workers run
 * them on engines of their own, and a task's outcome is read from the store
 * by whoever asks. A worker holds each task it runs (BullMQ's job lock, renewed
 * while it runs); when a worker dies, its tasks go back to the queue once the
 * hold lapses and another worker takes them, the lost attempt recorded.
 * Results are committed only by the attempt that holds the task's lease in
 * the store, so no task completes twice, however late a presumed-dead worker
 * answers.
 */
export class TaskQueue {
  private readonly queue: Queue;
  private readonly store: RedisTaskStore;
  private readonly connection: { url: string; maxRetriesPerRequest: null };
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly nextId = createIdGenerator();
  private events: Promise<QueueEvents> | undefined;
  private readonly waiting = new Map<string, Array<{ resolve: () => void; reject: (error: Error) => void }>>();
  private readonly workers: Worker[] = [];
  /** Rows queued in this turn of the event loop, kept and queued together at its end. */
  private pending: TaskRow[] = [];
  /** Writes of queued rows on their way. */
  private readonly sending = new Set<Promise<void>>();
  /** Why tasks queued here could not be kept or queued. */
  private readonly unsent = new Map<string, FanoutError>();
  private closed = false;

  constructor(options: TaskQueueOptions) {
    this.store = options.store;
    this.prefix = options.prefix ?? 'fanout:';
    this.clock = options.clock ?? new SystemClock();
    this.leaseMs = options.leaseMs ?? 10_000;
    // BullMQ's blocking reads need a client that never gives up a command.
    this.connection = { url: options.url, maxRetriesPerRequest: null };
    this.queue = new Queue(QUEUE, { connection: this.connection, prefix: this.bullPrefix() });
    // A lost connection comes back by itself; what could not be sent fails on its own promise.
    this.queue.on('error', () => undefined);
  }

  /** Validates and queues each request; resolves with their task ids, in order, once they are kept. */
  async submit(requests: readonly TaskRequest[]): Promise<string[]> {
    const ids = requests.map((request) => this.enqueue(request));
    await this.allSent();
    const failed = ids.map((id) => this.unsent.get(id)).find((error) => error !== undefined);
    if (failed) throw failed;
    return ids;
  }

  /**
   * Validates and queues one request at once, returning its id; requests
   * queued in the same turn of the event loop are kept and queued together
   * (one write, one bulk add). When that fails, `ended` of their ids rejects
   * with the reason. `batch` keeps the task's batch and input line in its row.
   */
  enqueue(input: TaskRequest, options: { batch?: { id: string; line: number } } = {}): string {
    if (this.closed) throw new FanoutError('engine_closed', 'the task queue was closed');
    const request = validateTaskRequest(input);
    const now = this.clock.now();
    const row: TaskRow = {
      id: this.nextId(),
      seq: now * 1000 + (this.pending.length % 1000),
      ...(options.batch ? { batchId: options.batch.id, line: options.batch.line } : {}),
      key: request.model,
      request,
      state: 'queued',
      submittedAt: now,
      readyAt: 0,
      attempts: [],
      queuedMs: 0,
      rateLimitedMs: 0,
      providerMs: 0,
    };
    this.pending.push(row);
    if (this.pending.length === 1) {
      const sending: Promise<void> = new Promise<void>((resolve) => queueMicrotask(() => resolve(this.send()))).finally(
        () => this.sending.delete(sending),
      );
      this.sending.add(sending);
    }
    return row.id;
  }

  private async allSent(): Promise<void> {
    await Promise.all([...this.sending]);
  }

  /** Keeps the rows queued so far and adds their jobs; a failure is kept against each of their ids. */
  private async send(): Promise<void> {
    const rows = this.pending;
    this.pending = [];
    try {
      const outcome = await this.store.write(rows, this.clock.now());
      if (outcome.unwritable?.length) {
        const error = new FanoutError('invalid_request', 'a task that cannot be kept (a value JSON cannot hold)');
        for (const id of outcome.unwritable) this.unsent.set(id, error);
      }
      const kept = rows.filter((row) => !this.unsent.has(row.id));
      await this.queue.addBulk(
        kept.map((row) => ({
          name: 'task',
          data: { id: row.id },
          // A worker that cannot take a task now (it is stopping) hands it back: tried again a second later.
          opts: {
            jobId: row.id,
            removeOnComplete: true,
            removeOnFail: true,
            attempts: Number.MAX_SAFE_INTEGER,
            backoff: { type: 'fixed', delay: 1000 },
          },
        })),
      );
    } catch (raw) {
      const error = asFanoutError(raw, 'io_error');
      for (const row of rows) this.unsent.set(row.id, error);
    }
  }

  /** The task's row once it has ended (completed, failed or cancelled). */
  async ended(id: string): Promise<TaskRow> {
    await this.allSent();
    const unsent = this.unsent.get(id);
    if (unsent) throw unsent;
    await this.queueEvents();
    for (;;) {
      // Listening before reading: an end between the read and the wait still wakes it.
      let waiter!: { resolve: () => void; reject: (error: Error) => void };
      const done = new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
      this.waiting.set(id, [...(this.waiting.get(id) ?? []), waiter]);
      const row = await this.store.get(id);
      if (!row || isTerminal(row.state)) {
        const others = (this.waiting.get(id) ?? []).filter((w) => w !== waiter);
        if (others.length > 0) this.waiting.set(id, others);
        else this.waiting.delete(id);
        if (!row) throw new FanoutError('unknown_task', `no task with id ${id}`);
        return row;
      }
      // An end told while this process could not hear (its connection to Redis was down) is found by looking again.
      let cancel: (() => void) | undefined;
      const again = new Promise<void>((resolve) => (cancel = this.clock.setTimer(LOOK_AGAIN_MS, resolve)));
      await Promise.race([done, again]).finally(() => cancel?.());
    }
  }

  /**
   * Runs queued tasks on `engine` (made with this queue's store, `resume:
   * false`) until `close`: at most `concurrency` at once. A task another
   * worker lost (it died holding it) is released first: its attempt recorded
   * as lost, then run again here.
   */
  work(engine: Engine, options: WorkerOptions = {}): Worker {
    const worker = new Worker<{ id: string }>(QUEUE, (job) => this.run(engine, job), {
      connection: this.connection,
      prefix: this.bullPrefix(),
      concurrency: options.concurrency ?? 64,
      lockDuration: this.leaseMs,
      stalledInterval: 1000,
      // The engine's own attempts decide when a task gives up; a lost worker never fails a task.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
    });
    worker.on('error', () => undefined);
    this.workers.push(worker);
    return worker;
  }

  private async run(engine: Engine, job: Job<{ id: string }>): Promise<void> {
    const now = this.clock.now();
    // A task found processing was held by a worker whose hold lapsed: that worker is gone.
    const row = await this.store.releaseLost(job.data.id, now);
    if (!row || isTerminal(row.state)) return;
    const [handle] = engine.adopt([row]);
    await handle?.result().catch(() => undefined);
    // The job ends once the task's end is stored: whoever waits for it reads it then. While the store
    // cannot be written (Redis away), the engine's journal keeps trying; so does this.
    for (;;) {
      await engine.flush();
      if (isTerminal((await this.store.get(row.id).catch(() => undefined))?.state ?? 'queued')) return;
      await this.clock.sleep(STORE_RETRY_MS);
    }
  }

  /** One listener for the queue's ends, made on first use (its connection reads BullMQ's event stream). */
  private queueEvents(): Promise<QueueEvents> {
    this.events ??= (async () => {
      const events = new QueueEvents(QUEUE, { connection: this.connection, prefix: this.bullPrefix() });
      events.on('error', () => undefined);
      const wake = ({ jobId }: { jobId: string }) => {
        for (const waiter of this.waiting.get(jobId) ?? []) waiter.resolve();
        this.waiting.delete(jobId);
      };
      events.on('completed', wake);
      events.on('failed', wake);
      await events.waitUntilReady();
      return events;
    })();
    return this.events;
  }

  private bullPrefix(): string {
    return `${this.prefix}bull`;
  }

  /** Stops this process's workers (their tasks in progress end first) and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.allSent();
    await Promise.all(this.workers.map((worker) => worker.close()));
    const closed = new FanoutError('engine_closed', 'the task queue was closed');
    for (const list of this.waiting.values()) for (const waiter of list) waiter.reject(closed);
    this.waiting.clear();
    await (await this.events)?.close();
    await this.queue.close();
  }
}
