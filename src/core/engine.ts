import { SystemClock, type Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError, ValidationError, type ErrorCode } from '../contracts/errors.js';
import type { Cost, Limiter, Reservation } from '../contracts/limiter.js';
import { createIdGenerator, systemRandom } from '../contracts/random.js';
import type { TaskRow, TaskStore } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import type { ModelResult, TaskRequest, Usage } from '../contracts/types.js';
import { MemoryLimiter } from '../limits/limiter.js';
import { Attempts } from './attempts.js';
import type { EngineOptions, SubmitOptions, TaskHandle } from './engine-options.js';
import { engineSettings, type EngineSettings } from './engine-settings.js';
import { EventHub, type EngineEvent, type EngineEventType, type EventListener, type EventOf } from './events.js';
import type { EventStreamOptions, TaskEvent } from './events.js';
import { gatherTasks, type GatherHost, type GatherOptions, type GatherOutcome } from './gather.js';
import { storedHandle, taskHandle, type HandleHost } from './handles.js';
import { TaskJournal, type StoreHealth } from './journal.js';
import { admissionCostOf, costOf, ModelRegistry, type ResolvedModel } from './models.js';
import { openJournal, restoreTasks } from './durability.js';
import { ResultCache } from './result-cache.js';
import { Scheduler } from './scheduler.js';
import { TaskBoard } from './task-board.js';
import { statusFromRow, Task, type TaskStatus } from './task.js';
import { validateTaskRequest } from './validate.js';
export type { EngineOptions, SubmitOptions, TaskHandle, TenantOptions } from './engine-options.js';
export { providerList } from './engine-settings.js';

/**
 * The one front door: submit calls, follow them, gather their results. Calls
 * run as fast as each limit key allows and never faster; a call that must
 * wait is `rate_limited` and holds no worker.
 *
 * The engine wires its parts and schedules: the `TaskBoard` holds tasks and
 * tells their moves, the `Scheduler` decides which runs next, `Attempts` runs
 * each call and its retries, the `ResultCache` answers repeats and joins
 * identical calls, and the `TaskJournal` keeps every task in the store.
 */
export class Engine {
  readonly clock: Clock;
  /** When the engine was made, on its clock. */
  readonly startedAt: number;
  /** The models' limits: the one given in the options, else one in memory. */
  readonly limiter: Limiter;
  /** Each tenant's own limits, keyed by tenant name; present when `tenants.limits` is set. */
  readonly tenantLimiter?: Limiter;
  /** Calls in flight allowed across the engine. */
  readonly concurrency: number;
  /** Resolves once tasks left in the store by an earlier run are back in the queues. */
  readonly recovered: Promise<number>;
  private readonly hub = new EventHub();
  private readonly settings: EngineSettings;
  private readonly nextId: () => string;
  private readonly models: ModelRegistry;
  private readonly board: TaskBoard;
  private readonly scheduler: Scheduler;
  private readonly attempts: Attempts;
  private readonly cache?: ResultCache;
  private readonly journal?: TaskJournal;
  private seq = 0;
  private closed = false;
  /** What handles and gathers use of the engine. */
  private readonly host: GatherHost & HandleHost = {
    createTask: (request) => this.createTask(request),
    cancel: (id) => this.cancel(id),
    result: (id) => this.result(id),
    events: (options) => this.hub.stream(options),
    now: () => this.clock.now(),
  };

  constructor(options: EngineOptions = {}) {
    const settings = (this.settings = engineSettings(options));
    const clock = (this.clock = options.clock ?? new SystemClock());
    this.startedAt = clock.now();
    this.limiter = options.limiter ?? new MemoryLimiter();
    this.concurrency = settings.concurrency;
    this.nextId = options.ids ?? createIdGenerator(options.random);
    this.models = new ModelRegistry({
      providers: settings.providers,
      models: options.models ?? {},
      groups: options.groups ?? {},
      limiter: this.limiter,
      now: () => clock.now(),
      onUnconfigured: (model, notice) => {
        if (this.hub.active) this.hub.emit({ type: 'model-unconfigured', at: clock.now(), key: model, ...notice });
      },
    });
    this.board = new TaskBoard(clock, this.hub, settings.maxEndedTasks, {
      deadline: (task) => this.expire(task),
      ended: (task, now) => task.cache && this.cache?.taskEnded(task, task.cache, now),
    });
    if (settings.cache)
      this.cache = new ResultCache(settings.cache.store, settings.cache.ttlMs, clock, {
        answer: (task, result, now) => this.board.complete(task, result, now),
        wait: (task, now) => this.board.queue(task, now),
        admit: (task, now) => this.admit(task, now),
        error: (error) => this.report('cache-error', asFanoutError(error, 'io_error')),
      });
    const { tenants } = settings;
    if (tenants.limits) this.tenantLimiter = new MemoryLimiter();
    const { board } = this;
    const hooks = {
      start: (task: Task, reservation: Reservation) => this.attempts.start(task, reservation),
      holdBack: board.holdBack.bind(board),
      requeue: board.requeue.bind(board),
      reject: board.fail.bind(board),
    };
    const tenantPolicy = { ...tenants, limiter: this.tenantLimiter };
    this.scheduler = new Scheduler(clock, this.limiter, hooks, settings.concurrency, tenantPolicy);
    this.attempts = new Attempts({
      ...settings,
      clock,
      random: options.random ?? systemRandom,
      hub: this.hub,
      board: this.board,
      limiter: this.limiter,
      tenantLimiter: this.tenantLimiter,
      scheduler: this.scheduler,
      countsTokens: (key) => this.models.countTokensOn(key),
      costOf: (model, request) => this.costOf(model, request),
    });
    const fail = (task: Task, error: FanoutError) => this.end(task, error, 'failed');
    this.journal = options.store && openJournal(options.store, clock, { report: this.report.bind(this), fail });
    this.recovered = this.journal && options.resume !== false ? this.recover(this.journal) : Promise.resolve(0);
  }

  /**
   * Validates and queues one request. Throws a `ValidationError` naming the
   * field on bad input (nothing is stored). A request too large for its limits
   * is accepted and fails at once with `request_too_large`.
   */
  submit(input: TaskRequest, options: SubmitOptions = {}): TaskHandle {
    return taskHandle(this.createTask(input, options), this.host);
  }

  /**
   * Submits a request under `options.id` unless a task with that id exists
   * (in memory, or ended in the store, as after a restart): then its handle,
   * and nothing is sent again. What resumes a pipeline run without paying
   * twice for a call that was answered.
   */
  async submitOnce(input: TaskRequest, options: SubmitOptions & { id: string }): Promise<TaskHandle> {
    await this.recovered;
    const known = this.board.get(options.id);
    if (known) return taskHandle(known, this.host);
    const row = await this.journal?.store.get(options.id);
    const again = this.board.get(options.id);
    if (again) return taskHandle(again, this.host);
    if (row && isTerminal(row.state)) return storedHandle(row);
    return this.submit(input, options);
  }

  /** Submits every request; resolves with their outcomes in input order (a failure is a value unless `failFast`). */
  gather(requests: readonly TaskRequest[], options: GatherOptions = {}): Promise<GatherOutcome[]> {
    return gatherTasks(this.host, requests, (request) => request, options);
  }

  /** `gather` over `items.map(toRequest)`; an item whose `toRequest` throws becomes a failed outcome. */
  map<T>(items: readonly T[], toRequest: (item: T, index: number) => TaskRequest, options: GatherOptions = {}) {
    return gatherTasks(this.host, items, toRequest, options);
  }

  /** Resolves with the task's result; rejects with its error (or `unknown_task`). */
  result(id: string): Promise<ModelResult> {
    const task = this.board.get(id);
    if (!task) return Promise.reject(new FanoutError('unknown_task', `no task with id ${id}`));
    return new Promise((resolve, reject) => {
      this.board.whenEnded(task, (t) => (t.state === 'completed' && t.result ? resolve(t.result) : reject(t.error)));
    });
  }

  /** Cancels a task that has not ended. Returns false when it had already ended or is unknown. */
  cancel(id: string): boolean {
    const task = this.board.get(id);
    if (!task || isTerminal(task.state)) return false;
    this.end(task, new FanoutError('cancelled', `task ${id} was cancelled`), 'cancelled');
    return true;
  }

  /** A copy of the task's state, or undefined for an id not in memory (see `find` for every stored task). */
  status(id: string): TaskStatus | undefined {
    return this.board.get(id)?.status(this.clock.now());
  }

  /** The task's state from memory or, for one this engine no longer holds, from the store; undefined if neither knows it. */
  async find(id: string): Promise<TaskStatus | undefined> {
    const here = this.status(id);
    if (here || !this.journal) return here;
    const row = await this.journal.store.get(id);
    return row && statusFromRow(row);
  }

  /** Resolves once every change so far is stored, by the next group write: true, false if it failed, true without a store. */
  written(): Promise<boolean> {
    return this.journal?.written() ?? Promise.resolve(true);
  }

  /** Writes every change so far to the store; resolves when it is there. Without a store, resolves at once. */
  flush(): Promise<void> {
    return this.journal?.flush() ?? Promise.resolve();
  }

  /** The store tasks are kept in, when the engine has one. */
  get store(): TaskStore | undefined {
    return this.journal?.store;
  }

  /** How the store's writes are going; always `ok` without a store. */
  storeHealth(): StoreHealth {
    return this.journal?.health ?? { ok: true };
  }

  on(type: '*', listener: EventListener): () => void;
  on<T extends EngineEventType>(type: T, listener: (event: EventOf<T>) => void): () => void;
  on<T extends EngineEventType>(type: T | '*', listener: (event: EventOf<T>) => void): () => void {
    return this.hub.on(type, listener);
  }

  /** One task's events from now on, to `listener`; returns the function that stops them. */
  onTask(taskId: string, listener: (event: TaskEvent) => void): () => void {
    return this.hub.onTask(taskId, listener);
  }

  /** Engine-wide events from now on, as an async iterator. */
  events(options?: EventStreamOptions): AsyncIterableIterator<EngineEvent> {
    return this.hub.stream(options);
  }

  /** What `usage` on `model` cost in US dollars, from the model's `price`; undefined without one. */
  priceOf(model: string, usage: Usage): number | undefined {
    const price = this.models.resolve(model).price;
    return price === undefined ? undefined : costOf(price, usage);
  }

  /** The mean provider time of this engine's completed calls on `model`, in ms; undefined before the first. */
  averageCallMs(model: string): number | undefined {
    return this.attempts.averageCallMs(model);
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  /** Tasks that have not ended. */
  get pendingCount(): number {
    return this.board.pendingCount;
  }

  /** When the call in flight longest started (engine clock), or undefined when none is in flight. */
  oldestCallStartedAt(): number | undefined {
    return this.attempts.oldestStartedAt();
  }

  /** How many tasks not ended are in each state (queued, rate_limited, processing, ...). */
  pendingByState(): Record<string, number> {
    return this.board.pendingByState();
  }

  /** Resolves when no task is pending. */
  idle(): Promise<void> {
    return this.board.idle();
  }

  /** Stops accepting tasks and cancels every task that has not ended. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.journal) {
      // What happened so far is stored; the shutdown's cancellations are not, so the
      // next engine on this store finds the unfinished tasks where they were.
      await this.journal.flush();
      this.journal.detach();
    }
    for (const task of this.board.values()) if (!isTerminal(task.state)) this.cancel(task.id);
    this.scheduler.close();
    this.attempts.stop();
    this.hub.close();
  }

  /** Makes and queues a task; throws, leaving nothing behind, on a request that cannot be one. */
  private createTask(input: TaskRequest, options: SubmitOptions = {}): Task {
    if (this.closed) throw new FanoutError('engine_closed', 'the engine is closed; create a new one');
    const request = validateTaskRequest(input);
    const resolved = this.models.resolve(request.model);
    const refused = resolved.provider.refuses?.(request);
    if (refused?.length) throw new ValidationError('invalid_request', refused);
    const now = this.clock.now();
    if (options.id !== undefined && this.board.has(options.id))
      throw new FanoutError('invalid_request', `id: a task with id ${options.id} exists`);
    const cache = this.cache?.policy(request, resolved, this.settings.defaultMaxTokens);
    const journal = options.durable !== false ? this.journal : undefined;
    const task = new Task(options.id ?? this.nextId(), this.seq++, request, resolved.key, now);
    if (journal || cache || options.batch || options.tenantCharged) task.place(options, journal, cache);
    task.resolve(resolved, this.costOf(resolved, request));
    this.board.add(task);
    if (cache && this.cache) this.cache.admit(task, cache, now);
    else this.admit(task, now);
    return task;
  }

  /**
   * Queues a task read back from the store (recovered, or handed over by a
   * queue) as a new one is queued: through the result cache when its request
   * may use it, so a worker answers from the cache every process shares and
   * fills it.
   */
  private admitKept(task: Task, now: number): void {
    const cache = this.cache?.policy(task.request, task.model, this.settings.defaultMaxTokens);
    if (!cache || !this.cache) return this.admit(task, now);
    task.place({}, undefined, cache);
    this.cache.admit(task, cache, now);
  }

  /** Queues a task for the scheduler, or fails it at once when it can never fit its limits. */
  private admit(task: Task, now: number): void {
    try {
      this.limiter.checkFits(task.key, task.cost);
    } catch (error) {
      this.board.fail(task, asFanoutError(error));
      return;
    }
    if (task.state === 'submitted') this.board.queue(task, now);
    this.scheduler.enqueue(task);
  }

  /** Ends a task that has not ended: its call (if any) is aborted and its permit settled. */
  private end(task: Task, error: FanoutError, state: 'cancelled' | 'failed'): void {
    const now = this.clock.now();
    if (task.state === 'processing') this.attempts.abort(task, error, state, now);
    this.board.end(task, state, now, { error });
  }

  private expire(task: Task): void {
    if (isTerminal(task.state)) return;
    const message = `task ${task.id} passed its deadline of ${task.request.deadlineMs} ms`;
    this.end(task, new FanoutError('deadline_exceeded', message), 'failed');
  }

  /** The charge a request is admitted at. */
  private costOf(resolved: ResolvedModel, request: TaskRequest): Cost {
    return admissionCostOf(resolved, request, this.settings.defaultMaxTokens);
  }

  /** Puts back in the queues the tasks an earlier run left in the store. */
  private async recover(journal: TaskJournal): Promise<number> {
    const rows = await journal.store.recover(this.clock.now());
    this.adopt(rows);
    return rows.length;
  }

  /**
   * Runs tasks kept in the store by another engine (a queue handed them
   * over), under their ids, with their attempts so far, kept in this engine's
   * store as they go. A task whose id this engine holds already is that task.
   */
  adopt(rows: readonly TaskRow[]): TaskHandle[] {
    if (this.closed) throw new FanoutError('engine_closed', 'the engine is closed; create a new one');
    const fresh = rows.filter((row) => !this.board.has(row.id));
    const { board, models, journal, scheduler } = this;
    const admit = (task: Task, now: number) => this.admitKept(task, now);
    const costOf = (model: ResolvedModel, request: TaskRequest) => this.costOf(model, request);
    const host = { board, models, journal, admit, costOf, delay: (task: Task) => scheduler.delay(task) };
    this.seq = restoreTasks(fresh, host, this.clock.now(), this.seq);
    return rows.map((row) => taskHandle(this.board.get(row.id) as Task, this.host));
  }

  private report(type: 'store-error' | 'store-conflict' | 'cache-error', error: { code: ErrorCode; message: string }) {
    if (this.hub.active)
      this.hub.emit({ type, at: this.clock.now(), error: { code: error.code, message: error.message } });
  }
}
