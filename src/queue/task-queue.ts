import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { SystemClock, type Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { createIdGenerator } from '../contracts/random.js';
import type { TaskRow } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import type { TaskRequest } from '../contracts/types.js';
import type { Engine } from '../core/engine.js';
import { isEnd } from '../core/events.js';
import { statusFromRow, type TaskStatus } from '../core/task.js';
import { validateTaskRequest } from '../core/validate.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';
import { TaskFeed } from './task-feed.js';

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
/** How long closing workers waits, once their tasks have ended, for BullMQ to let go before cutting its connections. */
const CLOSE_GRACE_MS = 2000;
/** How often the tasks `ended` waits for are read again (all in one go) without having been told they ended. */
const LOOK_AGAIN_MS = 5000;
/** How old a task kept without a job must be before a worker queues it again. */
const STRANDED_AFTER_MS = 60_000;
/** How often a worker looks for such tasks, and how many of the oldest open tasks it looks at. */
const SWEEP_EVERY_MS = 60_000;
const SWEEP_LIMIT = 10_000;
/** Rows read per round trip when they are read again. */
const LOOK_AGAIN_CHUNK = 1000;

/** A task's job id: its task id, with `:` (which BullMQ refuses in an id) and `%` escaped. */
const jobId = (taskId: string): string => taskId.replace(/%/g, '%25').replace(/:/g, '%3A');
const taskIdOf = (job: string): string => job.replace(/%3A/g, ':').replace(/%25/g, '%');

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
  private readonly sending = new Set<Promise<boolean>>();
  /** Why tasks queued here could not be kept or queued. */
  private readonly unsent = new Map<string, FanoutError>();
  private closed = false;
  /** Tasks this process's workers are running, until BullMQ has recorded their jobs' ends. */
  private readonly running = new Set<Promise<void>>();
  /** What tells each running job's end recorded, by job id. */
  private readonly recording = new Map<string, () => void>();
  private taskFeed: TaskFeed | undefined;
  private lookingAgain: (() => void) | undefined;
  /** Stops the look for stranded tasks. */
  private sweeping: (() => void) | undefined;

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
    const ids = requests.map((request) => this.enqueue(request).id);
    await this.allSent();
    const failed = ids.map((id) => this.unsent.get(id)).find((error) => error !== undefined);
    if (failed) throw failed;
    return ids;
  }

  /**
   * Validates and queues one request at once, returning its row; requests
   * queued in the same turn of the event loop are kept and queued together
   * (one write, one bulk add). When that fails, `ended` of their ids rejects
   * with the reason. `batch` keeps the task's batch and input line in its row;
   * `id` names the task instead of a generated id.
   */
  enqueue(input: TaskRequest, options: { batch?: { id: string; line: number }; id?: string } = {}): TaskRow {
    if (this.closed) throw new FanoutError('engine_closed', 'the task queue was closed');
    const request = validateTaskRequest(input);
    const now = this.clock.now();
    const row: TaskRow = {
      id: options.id ?? this.nextId(),
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
      queued: true,
    };
    this.pending.push(row);
    if (this.pending.length === 1) {
      const sending: Promise<boolean> = new Promise<boolean>((resolve) =>
        queueMicrotask(() => resolve(this.send())),
      ).finally(() => this.sending.delete(sending));
      this.sending.add(sending);
    }
    return row;
  }

  /** Queues again the tasks of `ids` whose rows are kept but whose jobs may be gone; a job still queued is left as it is. */
  async requeue(ids: readonly string[]): Promise<void> {
    await this.queue.addBulk(ids.map((id) => this.job(id)));
  }

  /**
   * Queues again the tasks kept in the store but left without a job: their
   * process stopped between keeping them and queueing them (or Redis lost
   * the queue's keys but not the tasks'). Looks at the `limit` oldest tasks
   * not ended, and queues those this queue kept (`queued`), submitted more
   * than `olderThanMs` ago, whose job is gone. A task queued twice this way is still run once: a job
   * already queued is left as it is, and a task's row says when it has ended.
   * Workers do this at start and every minute. Resolves with the count queued.
   */
  async requeueStranded(options: { olderThanMs?: number; limit?: number } = {}): Promise<number> {
    const olderThan = this.clock.now() - (options.olderThanMs ?? STRANDED_AFTER_MS);
    const ids = await this.store.openIds(options.limit ?? SWEEP_LIMIT);
    const stranded: string[] = [];
    for await (const [, rows] of this.rowsOf(ids)) {
      // Only tasks a queue kept and no worker has written: an engine's own tasks are never handed out.
      const old = rows.filter((row): row is TaskRow => row?.queued === true && row.submittedAt < olderThan);
      const jobs = await Promise.all(old.map((row) => this.queue.getJob(jobId(row.id))));
      old.forEach((row, at) => jobs[at] === undefined && stranded.push(row.id));
    }
    if (stranded.length > 0) await this.requeue(stranded);
    return stranded.length;
  }

  /** Resolves once every task queued so far is kept and queued: true, false if any of those still being sent could not be. */
  async written(): Promise<boolean> {
    const sent = await Promise.all([...this.sending]);
    return sent.every(Boolean);
  }

  /** The task's status as kept in the store. */
  async find(id: string): Promise<TaskStatus | undefined> {
    const row = await this.store.get(id);
    return row && statusFromRow(row);
  }

  /** The rows of `ids`, read a chunk at a time (one round trip each), with the ids of each chunk. */
  private async *rowsOf(ids: readonly string[]): AsyncGenerator<[string[], (TaskRow | undefined)[]]> {
    for (let i = 0; i < ids.length; i += LOOK_AGAIN_CHUNK) {
      const chunk = ids.slice(i, i + LOOK_AGAIN_CHUNK);
      yield [chunk, await this.store.getMany(chunk)];
    }
  }

  private async allSent(): Promise<void> {
    await Promise.all([...this.sending]);
  }

  private job(id: string) {
    return {
      name: 'task',
      data: { id },
      // A worker that cannot take a task now (it is stopping) hands it back: tried again a second later.
      opts: {
        jobId: jobId(id),
        removeOnComplete: true,
        removeOnFail: true,
        attempts: Number.MAX_SAFE_INTEGER,
        backoff: { type: 'fixed' as const, delay: 1000 },
      },
    };
  }

  /** Keeps the rows queued so far and adds their jobs; a failure is kept against each of their ids (false). */
  private async send(): Promise<boolean> {
    const rows = this.pending;
    this.pending = [];
    try {
      const outcome = await this.store.write(rows, this.clock.now());
      if (outcome.unwritable?.length) {
        const error = new FanoutError('invalid_request', 'a task that cannot be kept (a value JSON cannot hold)');
        for (const id of outcome.unwritable) this.unsent.set(id, error);
      }
      const kept = rows.filter((row) => !this.unsent.has(row.id));
      await this.queue.addBulk(kept.map((row) => this.job(row.id)));
      return kept.length === rows.length;
    } catch (raw) {
      const error = asFanoutError(raw, 'io_error');
      for (const row of rows) this.unsent.set(row.id, error);
      return false;
    }
  }

  /** The task's row once it has ended (completed, failed or cancelled). */
  async ended(id: string): Promise<TaskRow> {
    await this.allSent();
    const unsent = this.unsent.get(id);
    if (unsent) {
      this.unsent.delete(id);
      throw unsent;
    }
    await this.queueEvents();
    for (;;) {
      if (this.closed) throw new FanoutError('engine_closed', 'the task queue was closed');
      // Listening before reading: an end between the read and the wait still wakes it.
      let waiter!: { resolve: () => void; reject: (error: Error) => void };
      const done = new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
      // Closing rejects it, perhaps while the row is being read: handled here, and thrown where it is awaited.
      done.catch(() => undefined);
      this.waiting.set(id, [...(this.waiting.get(id) ?? []), waiter]);
      const row = await this.store.get(id);
      if (!row || isTerminal(row.state)) {
        const others = (this.waiting.get(id) ?? []).filter((w) => w !== waiter);
        if (others.length > 0) this.waiting.set(id, others);
        else this.waiting.delete(id);
        if (!row) throw new FanoutError('unknown_task', `no task with id ${id}`);
        return row;
      }
      this.lookAgainLater();
      await done;
    }
  }

  /**
   * An end told while this process could not hear (its connection to Redis
   * was down) is found by reading the waited-for rows again, every few
   * seconds while any are waited for: all of them in a few round trips.
   */
  private lookAgainLater(): void {
    if (this.lookingAgain || this.closed) return;
    this.lookingAgain = this.clock.setTimer(LOOK_AGAIN_MS, () => void this.lookAgain());
  }

  private async lookAgain(): Promise<void> {
    try {
      for await (const [chunk, rows] of this.rowsOf([...this.waiting.keys()])) {
        chunk.forEach((id, at) => {
          const row = rows[at];
          if (row && !isTerminal(row.state)) return;
          for (const waiter of this.waiting.get(id) ?? []) waiter.resolve();
          this.waiting.delete(id);
        });
      }
    } catch {
      // Redis is away: the next look reads them again.
    }
    this.lookingAgain = undefined;
    if (this.waiting.size > 0) this.lookAgainLater();
  }

  /** Task events and cancellations between this Redis's processes, opened on first use. */
  get feed(): TaskFeed {
    this.taskFeed ??= new TaskFeed(this.connection.url, this.prefix);
    return this.taskFeed;
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
    const recorded = (job: Job | undefined) => job?.id !== undefined && this.recording.get(job.id)?.();
    worker.on('completed', recorded);
    worker.on('failed', recorded);
    this.workers.push(worker);
    // What happens to the tasks run here is told to every process of this Redis; a cancellation asked anywhere is done here.
    const feed = this.feed;
    // A task's end is told once it is stored, so that whoever hears it reads the same from the store.
    engine.on('*', (event) => {
      if (!('taskId' in event)) return;
      if (!isEnd(event)) return feed.tell(event);
      const status = engine.status(event.taskId);
      void engine.written().then((stored) => stored && feed.tell(event, status));
    });
    // Until it listens (or if the queue closes first), a cancellation reaches only tasks no worker holds yet.
    feed.onCancel((id) => engine.cancel(id)).catch(() => undefined);
    this.sweepNowAndLater();
    return worker;
  }

  /** Queues stranded tasks again now and every `SWEEP_EVERY_MS` until closed (once per queue, however many workers). */
  private sweepNowAndLater(): void {
    if (this.sweeping || this.closed) return;
    const sweep = (): void => {
      this.requeueStranded()
        .catch(() => undefined)
        .finally(() => {
          if (!this.closed) this.sweeping = this.clock.setTimer(SWEEP_EVERY_MS, sweep);
        });
    };
    this.sweeping = () => undefined;
    sweep();
  }

  /** Runs the job's task; counted as running until BullMQ has recorded the job's end (or a while after, if it cannot). */
  private async run(engine: Engine, job: Job<{ id: string }>): Promise<void> {
    let recorded!: () => void;
    let late: (() => void) | undefined;
    const running: Promise<void> = new Promise<void>((resolve) => (recorded = resolve)).finally(() => {
      late?.();
      this.running.delete(running);
      this.recording.delete(job.id as string);
    });
    this.running.add(running);
    this.recording.set(job.id as string, recorded);
    try {
      await this.runOne(engine, job);
    } finally {
      late = this.clock.setTimer(CLOSE_GRACE_MS, recorded);
    }
  }

  private async runOne(engine: Engine, job: Job<{ id: string }>): Promise<void> {
    const now = this.clock.now();
    // A task found processing was held by a worker whose hold lapsed: that worker is gone.
    const row = await this.store.releaseLost(job.data.id, now);
    if (!row || isTerminal(row.state)) return;
    const [handle] = engine.adopt([row]);
    await handle?.result().catch(() => undefined);
    // The job ends once the task's end is stored (by the engine's next group write, a few ms away):
    // whoever waits for it reads it then. While the store cannot be written (Redis away), the
    // engine's journal keeps trying, and this looks at the stored row until it says the task ended.
    for (;;) {
      if (await engine.written()) return;
      if (isTerminal((await this.store.get(row.id).catch(() => undefined))?.state ?? 'queued')) return;
      await this.clock.sleep(STORE_RETRY_MS);
    }
  }

  /** One listener for the queue's ends, made on first use (its connection reads BullMQ's event stream). */
  private queueEvents(): Promise<QueueEvents> {
    this.events ??= (async () => {
      const events = new QueueEvents(QUEUE, { connection: this.connection, prefix: this.bullPrefix() });
      events.on('error', () => undefined);
      const wake = (event: { jobId: string }) => {
        const id = taskIdOf(event.jobId);
        for (const waiter of this.waiting.get(id) ?? []) waiter.resolve();
        this.waiting.delete(id);
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

  /**
   * Closes the workers once the tasks they run have ended and BullMQ has
   * recorded their jobs' ends: they take no new task from the start (paused),
   * and close without waiting on their blocking connection, which BullMQ's
   * graceful close can wait on for ever after Redis went away and came back
   * (taskforcesh/bullmq#4656).
   */
  private async closeWorkers(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.pause(true)));
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    await Promise.all(this.workers.map((worker) => worker.close(true)));
  }

  /** `close()`, or `cut()` when it has not ended within `CLOSE_GRACE_MS`. */
  private async closeWithin(close: () => Promise<unknown>, cut: () => Promise<unknown>): Promise<void> {
    const within = (work: Promise<unknown>): Promise<boolean> => {
      let cancel: (() => void) | undefined;
      const late = new Promise<boolean>(
        (resolve) => (cancel = this.clock.setTimer(CLOSE_GRACE_MS, () => resolve(false))),
      );
      return Promise.race([work.then(() => true), late]).finally(() => cancel?.());
    };
    if (!(await within(close()))) await within(cut());
  }

  /** Stops this process's workers (their tasks in progress end first) and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.allSent();
    await this.closeWorkers();
    this.lookingAgain?.();
    this.sweeping?.();
    const closed = new FanoutError('engine_closed', 'the task queue was closed');
    for (const list of this.waiting.values()) for (const waiter of list) waiter.reject(closed);
    this.waiting.clear();
    const events = await this.events;
    if (events)
      await this.closeWithin(
        () => events.close(),
        () => events.disconnect(),
      );
    await this.taskFeed?.close();
    await this.closeWithin(
      () => this.queue.close(),
      () => this.queue.disconnect(),
    );
  }
}
