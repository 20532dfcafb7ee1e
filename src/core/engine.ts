import type { CallTimeouts } from '../contracts/provider.js';
import { failedCost, settledCost } from '../limits/accounting.js';
import { observedLimits } from '../limits/learning.js';
import type { Cost, Limiter, Reservation, WaitReason } from '../contracts/limiter.js';
import { MemoryLimiter } from '../limits/limiter.js';
import type { CallContext, ModelCall, Provider } from '../contracts/provider.js';
import { SystemClock, type Clock } from '../contracts/clock.js';
import type { EngineOptions, SubmitOptions, TaskHandle } from './engine-options.js';
import {
  asFanoutError,
  FanoutError,
  ProviderError,
  RetryError,
  type AttemptRecord,
  type ErrorCode,
} from '../contracts/errors.js';
import {
  EventHub,
  isEnd,
  type EngineEvent,
  type EngineEventType,
  type EventError,
  type EventListener,
  type EventOf,
  type EventStreamOptions,
  type TaskEvent,
  type TaskEventBase,
} from './events.js';
import { admissionCostOf, costOf, ModelRegistry, type ResolvedModel } from './models.js';
import { createIdGenerator, systemRandom, type Random } from '../contracts/random.js';
import { decideRetry, DEFAULT_RETRY, type RetryOptions } from './retry.js';
import { Scheduler } from './scheduler.js';
import { isTerminal } from '../contracts/task-state.js';
import { Gather, Outcome, type GatherOptions, type GatherOutcome } from './gather.js';
import { Attempt, statusFromRow, Task, type TaskOutcome, type TaskStatus } from './task.js';
import type { ModelResult, RateLimitInfo, TaskRequest, Usage } from '../contracts/types.js';
import { callTimeouts, nonNegative, positiveInteger, positiveNumber } from './option-checks.js';
import { CallWatchdog, DEFAULT_CALL_TIMEOUTS } from './watchdog.js';
import { validateTaskRequest } from './validate.js';
import type { CacheEntry } from '../contracts/cache-store.js';
import type { TaskRow, TaskStore } from '../contracts/task-store.js';
import { DEFAULT_LEASE_MS, TaskJournal, type StoreHealth } from './journal.js';
import { DEFAULT_CACHE_TTL_MS, ResultCache } from './result-cache.js';
import type { CachePolicy } from '../contracts/cache-store.js';
export type { EngineOptions, SubmitOptions, TaskHandle, TenantOptions } from './engine-options.js';

/** How long the first call on a key of unknown limits holds back the rest before they go a few at a time. */
const PROBE_PATIENCE_MS = 15_000;
/** Calls in flight at once on a key of unknown limits whose first call failed or hung. */
const MODEST_CONCURRENCY = 4;

/**
 * The one front door: submit calls, follow them, gather their results. Calls
 * run as fast as each limit key allows and never faster; a call that must
 * wait is `rate_limited` and holds no worker.
 */
export class Engine {
  readonly clock: Clock;
  /** When the engine was made, on its clock. */
  readonly startedAt: number;
  /** The models' limits: the one given in the options, else one in memory. */
  readonly limiter: Limiter;
  /** Each tenant's own limits, keyed by tenant name; present when `tenants.limits` is set. */
  readonly tenantLimiter?: Limiter;
  private readonly random: Random;
  private readonly nextId: () => string;
  private readonly models: ModelRegistry;
  private readonly scheduler: Scheduler;
  private readonly hub = new EventHub();
  private readonly tasks = new Map<string, Task>();
  private readonly retry: Required<RetryOptions>;
  private readonly defaultMaxTokens: number;
  /** Calls in flight allowed across the engine. */
  readonly concurrency: number;
  private readonly maxEndedTasks: number;
  /** Ids of ended tasks, oldest first, from `endedHead` on. */
  private ended: string[] = [];
  private endedHead = 0;
  private seq = 0;
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly cache?: ResultCache;
  /** Provider time of completed calls per model: the count and the sum, in ms. */
  private readonly callTimes = new Map<string, { count: number; totalMs: number }>();
  private readonly journal?: TaskJournal;
  private readonly leaseMs: number;
  /** Resolves once tasks left in the store by an earlier run are back in the queues. */
  readonly recovered: Promise<number>;
  /** Each provider's call timeouts: its own over the engine's over the defaults. */
  private readonly timeouts = new Map<string, Required<CallTimeouts>>();
  /** Every call in flight, watched for a provider that has stopped answering. */
  private readonly watchdog: CallWatchdog<Attempt>;
  /** The call sent first on a key whose limits are not known yet, while it is the only one allowed. */
  private readonly probes = new Map<string, Attempt>();

  constructor(options: EngineOptions = {}) {
    this.clock = options.clock ?? new SystemClock();
    this.startedAt = this.clock.now();
    this.limiter = options.limiter ?? new MemoryLimiter();
    this.random = options.random ?? systemRandom;
    this.nextId = options.ids ?? createIdGenerator(options.random);
    this.retry = {
      maxAttempts: positiveInteger('retry.maxAttempts', options.retry?.maxAttempts, DEFAULT_RETRY.maxAttempts),
      baseDelayMs: nonNegative('retry.baseDelayMs', options.retry?.baseDelayMs, DEFAULT_RETRY.baseDelayMs),
      maxDelayMs: nonNegative('retry.maxDelayMs', options.retry?.maxDelayMs, DEFAULT_RETRY.maxDelayMs),
    };
    this.defaultMaxTokens = positiveInteger('defaultMaxTokens', options.defaultMaxTokens, 1024);
    this.maxEndedTasks = positiveInteger('maxEndedTasks', options.maxEndedTasks, 50_000);
    const cacheOptions = options.cache === false ? undefined : (options.cache ?? {});
    if (cacheOptions) {
      // createEngine gives an engine its default store (in memory); an engine made directly names its own.
      if (!cacheOptions.store)
        throw new FanoutError(
          'invalid_config',
          'cache.store: an engine made with new Engine() needs a CacheStore for its result cache, or cache: false (createEngine gives it one in memory)',
        );
      const ttlMs = positiveInteger('cache.ttlMs', cacheOptions.ttlMs, DEFAULT_CACHE_TTL_MS);
      this.cache = new ResultCache(cacheOptions.store, ttlMs, (error) => this.cacheError(error));
    }
    const concurrency = positiveInteger('concurrency', options.concurrency, 256);
    this.concurrency = concurrency;
    this.leaseMs = positiveInteger('leaseMs', options.leaseMs, DEFAULT_LEASE_MS);
    const providers = new Map<string, Provider>();
    const engineTimeouts = callTimeouts('callTimeouts', options.callTimeouts, DEFAULT_CALL_TIMEOUTS);
    for (const provider of providerList(options.providers)) {
      providers.set(provider.name, provider);
      this.timeouts.set(
        provider.name,
        callTimeouts(`providers.${provider.name}.timeouts`, provider.timeouts, engineTimeouts),
      );
    }
    this.watchdog = new CallWatchdog(this.clock, (_, now) => this.openStalledProbes(now));
    this.models = new ModelRegistry({
      providers,
      models: options.models ?? {},
      groups: options.groups ?? {},
      limiter: this.limiter,
      now: () => this.clock.now(),
      onUnconfigured: (model, notice) => {
        if (this.hub.active) this.hub.emit({ type: 'model-unconfigured', at: this.clock.now(), key: model, ...notice });
      },
    });
    const tenants = options.tenants ?? {};
    const weights = new Map(
      Object.entries(tenants.weights ?? {}).map(([tenant, weight]) => [
        tenant,
        positiveNumber(`tenants.weights.${tenant}`, weight),
      ]),
    );
    if (tenants.limits) this.tenantLimiter = new MemoryLimiter();
    this.scheduler = new Scheduler(
      this.clock,
      this.limiter,
      {
        start: (task, reservation) => this.startAttempt(task, reservation),
        holdBack: (task, eta, reason) => this.holdBack(task, eta, reason),
        requeue: (task) => this.requeue(task),
        reject: (task, error) => this.fail(task, error),
      },
      concurrency,
      {
        weightOf: (tenant) => weights.get(tenant) ?? 1,
        maxInFlight: positiveInteger('tenants.maxInFlight', tenants.maxInFlight, Number.POSITIVE_INFINITY),
        limits: tenants.limits,
        limiter: this.tenantLimiter,
      },
    );
    if (options.store) {
      this.journal = new TaskJournal({
        store: options.store,
        clock: this.clock,
        onError: (error) => this.storeEvent('store-error', error.code, error.message),
        onConflict: (outcome) =>
          this.storeEvent(
            'store-conflict',
            'illegal_transition',
            `the store kept its own record of ${[...outcome.ended, ...outcome.leased].join(', ')}`,
          ),
        onUnwritable: (tasks) => this.unwritable(tasks),
      });
      this.recovered = this.recover(options.store);
    } else {
      this.recovered = Promise.resolve(0);
    }
  }

  /**
   * Validates and queues one request. Throws a `ValidationError` naming the
   * field on bad input (nothing is stored). A request too large for its limits
   * is accepted and fails at once with `request_too_large`.
   */
  submit(input: TaskRequest, options: SubmitOptions = {}): TaskHandle {
    const task = this.createTask(input, options);
    return this.handleFor(task);
  }

  /**
   * Resolves once every change so far is stored, by the next group write (at
   * most 5 ms away; no commit of its own): true, false if that write failed,
   * true at once without a store.
   */
  written(): Promise<boolean> {
    return this.journal?.written() ?? Promise.resolve(true);
  }

  /**
   * Submits a request under `options.id` unless a task with that id exists
   * (in memory, or ended in the store, as after a restart): then its handle,
   * and nothing is sent again. What resumes a pipeline run without paying
   * twice for a call that was answered.
   */
  async submitOnce(input: TaskRequest, options: SubmitOptions & { id: string }): Promise<TaskHandle> {
    await this.recovered;
    const known = this.tasks.get(options.id);
    if (known) return this.handleFor(known);
    const row = await this.journal?.store.get(options.id);
    const again = this.tasks.get(options.id);
    if (again) return this.handleFor(again);
    if (row && isTerminal(row.state)) return storedHandle(row);
    return this.submit(input, options);
  }

  /** Writes every change so far to the store; resolves when it is there. Without a store, resolves at once. */
  flush(): Promise<void> {
    return this.journal?.flush() ?? Promise.resolve();
  }

  /** A copy of the task's state, or undefined for an id not in memory (see `find` for every stored task). */
  status(id: string): TaskStatus | undefined {
    return this.tasks.get(id)?.status(this.clock.now());
  }

  /**
   * The task's state, from memory or, for a task this engine no longer holds
   * (ended long ago, or before a restart), from the store; undefined when
   * neither knows it.
   */
  async find(id: string): Promise<TaskStatus | undefined> {
    const here = this.status(id);
    if (here || !this.journal) return here;
    const row = await this.journal.store.get(id);
    return row && statusFromRow(row);
  }

  /** The store tasks are kept in, when the engine has one. */
  get store(): TaskStore | undefined {
    return this.journal?.store;
  }

  /** Resolves with the task's result; rejects with its error (or `unknown_task`). */
  result(id: string): Promise<ModelResult> {
    const task = this.tasks.get(id);
    if (!task) return Promise.reject(new FanoutError('unknown_task', `no task with id ${id}`));
    return new Promise((resolve, reject) => {
      this.whenSettled(task, (t) => (t.state === 'completed' ? resolve(t.result as ModelResult) : reject(t.error)));
    });
  }

  /** Cancels a task that has not ended. Returns false when it had already ended or is unknown. */
  cancel(id: string): boolean {
    const task = this.tasks.get(id);
    if (!task || isTerminal(task.state)) return false;
    this.cancelWith(task, new FanoutError('cancelled', `task ${id} was cancelled`), 'cancelled');
    return true;
  }

  /** How the store's writes are going; always `ok` without a store. */
  storeHealth(): StoreHealth {
    return this.journal?.health ?? { ok: true };
  }

  /**
   * Submits every request and resolves with their outcomes in input order. A
   * failed call is a value (`ok: false`), unless `failFast` is set.
   */
  gather(requests: readonly TaskRequest[], options: GatherOptions = {}): Promise<GatherOutcome[]> {
    return this.gatherEntries(requests, identity, options);
  }

  /** `gather` over `items.map(toRequest)`; an item whose `toRequest` throws becomes a failed outcome. */
  map<T>(
    items: readonly T[],
    toRequest: (item: T, index: number) => TaskRequest,
    options: GatherOptions = {},
  ): Promise<GatherOutcome[]> {
    return this.gatherEntries(items, toRequest, options);
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

  /**
   * What `usage` on `model` cost in US dollars, from the model's `price`;
   * undefined when no price is configured for it.
   */
  priceOf(model: string, usage: Usage): number | undefined {
    const price = this.models.resolve(model).price;
    return price === undefined ? undefined : costOf(price, usage);
  }

  /** The mean provider time of this engine's completed calls on `model`, in ms; undefined before the first. */
  averageCallMs(model: string): number | undefined {
    const times = this.callTimes.get(model);
    return times ? times.totalMs / times.count : undefined;
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  /** Tasks that have not ended. */
  get pendingCount(): number {
    return this.pending;
  }

  /** When the call in flight longest started (engine clock), or undefined when none is in flight. */
  oldestCallStartedAt(): number | undefined {
    return this.watchdog.oldestStartedAt();
  }

  /** How many tasks not ended are in each state (queued, rate_limited, processing, ...). */
  pendingByState(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const task of this.tasks.values())
      if (!isTerminal(task.state)) counts[task.state] = (counts[task.state] ?? 0) + 1;
    return counts;
  }

  /** Resolves when no task is pending. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
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
    for (const task of this.tasks.values()) if (!isTerminal(task.state)) this.cancel(task.id);
    this.scheduler.close();
    this.watchdog.stop();
    this.hub.close();
  }

  // ── submission ────────────────────────────────────────────────────────────

  private createTask(input: TaskRequest, options: SubmitOptions = {}): Task {
    if (this.closed) throw new FanoutError('engine_closed', 'the engine is closed; create a new one');
    const request = validateTaskRequest(input);
    const resolved = this.models.resolve(request.model);
    const now = this.clock.now();
    if (options.id !== undefined && this.tasks.has(options.id))
      throw new FanoutError('invalid_request', `id: a task with id ${options.id} exists`);
    const task = new Task(options.id ?? this.nextId(), this.seq++, request, resolved.key, now);
    task.model = resolved;
    if (options.batch) task.batch = options.batch;
    if (options.durable !== false) task.journal = this.journal;
    if (options.tenantCharged) task.tenantCharged = true;
    task.cost = this.costOf(resolved, request);
    // Whatever can throw comes before the task is kept: a request refused here leaves nothing behind.
    task.cache = this.cache?.policy(request, resolved, request.maxTokens ?? this.defaultMaxTokens);
    this.tasks.set(task.id, task);
    this.pending += 1;
    if (!task.cache) {
      this.admit(task, now);
      return task;
    }
    const found = (this.cache as ResultCache).lookup(task.cache.key, now);
    if (found instanceof Promise) found.then((entry) => this.afterLookup(task, entry));
    else this.afterLookup(task, found);
    return task;
  }

  /** A cache hit answers at once; otherwise join an identical call in flight, or lead one. */
  private afterLookup(task: Task, entry: CacheEntry | undefined): void {
    if (isTerminal(task.state)) return;
    const now = this.clock.now();
    const policy = task.cache as CachePolicy;
    if (entry) {
      task.result = { ...entry.result, cache: { source: 'stored', ageMs: now - entry.storedAt } };
      this.finish(task, 'completed', now);
      return;
    }
    const cache = this.cache as ResultCache;
    const leader = cache.leaderOf(policy.key);
    if (leader) {
      this.queue(task, now);
      cache.join(leader, task);
      return;
    }
    cache.lead(policy.key, task);
    this.admit(task, now);
  }

  /** Queues a task for the scheduler, or fails it at once when it can never fit its limits. */
  private admit(task: Task, now: number): void {
    try {
      this.limiter.checkFits(task.key, task.cost);
    } catch (error) {
      this.fail(task, asFanoutError(error));
      return;
    }
    if (task.state === 'submitted') this.queue(task, now);
    this.scheduler.enqueue(task);
  }

  /** Moves a submitted task to queued and starts its deadline. */
  private queue(task: Task, now: number): void {
    task.moveTo('queued', now);
    this.emitTask('task-queued', task, now, {});
    if (Number.isFinite(task.deadlineAt)) {
      task.cancelDeadline = this.clock.setTimer(task.deadlineAt - now, () => this.expire(task));
    }
  }

  /**
   * A task that led a call for its cache key ended: the tasks waiting on it
   * get its answer, or, if it failed or was cancelled, run on their own (the
   * first becomes the new leader; a failure is not shared).
   */
  private settleFollowers(task: Task, now: number): void {
    const cache = this.cache as ResultCache;
    const policy = task.cache as CachePolicy;
    for (const follower of cache.ended(task, policy, now)) {
      if (follower.state !== 'queued') continue;
      if (task.state === 'completed' && task.result) {
        follower.result = { ...task.result, cache: { source: 'in-flight', ageMs: 0 } };
        this.finish(follower, 'completed', now);
        continue;
      }
      const leader = cache.leaderOf(policy.key);
      if (leader) {
        cache.join(leader, follower);
      } else {
        cache.lead(policy.key, follower);
        this.admit(follower, now);
      }
    }
  }

  /** Tasks the store could not hold fail on their own; every other task's writes go on. */
  private unwritable(tasks: readonly Task[]): void {
    for (const task of tasks) {
      this.storeEvent(
        'store-error',
        'invalid_request',
        `task ${task.id} could not be stored (its request or result cannot be serialised) and has failed`,
      );
      if (!isTerminal(task.state))
        this.cancelWith(
          task,
          new FanoutError('invalid_request', `task ${task.id} could not be stored: its request cannot be serialised`),
          'failed',
        );
    }
  }

  private storeEvent(type: 'store-error' | 'store-conflict', code: ErrorCode, message: string): void {
    if (this.hub.active) this.hub.emit({ type, at: this.clock.now(), error: { code, message } });
  }

  /**
   * Puts back in the queues the tasks an earlier run left in the store.
   * Their ids, submission order, attempts and time split are kept.
   */
  private async recover(store: TaskStore): Promise<number> {
    const rows = await store.recover(this.clock.now());
    const now = this.clock.now();
    for (const row of rows) {
      const task = Task.fromRow(row);
      this.seq = Math.max(this.seq, row.seq + 1);
      task.journal = this.journal;
      this.tasks.set(task.id, task);
      this.pending += 1;
      try {
        const resolved = this.models.resolve(row.request.model);
        task.model = resolved;
        task.cost = this.costOf(resolved, row.request);
      } catch (error) {
        this.fail(task, asFanoutError(error));
        continue;
      }
      if (row.state === 'rate_limited' && row.readyAt > now) {
        task.moveTo('queued', now);
        task.moveTo('rate_limited', now);
        task.eta = row.readyAt;
        this.scheduler.delay(task);
      } else {
        this.admit(task, now);
      }
    }
    return rows.length;
  }

  private cacheError(error: unknown): void {
    if (!this.hub.active) return;
    const e = asFanoutError(error, 'io_error');
    this.hub.emit({ type: 'cache-error', at: this.clock.now(), error: { code: e.code, message: e.message } });
  }

  /** The charge a request is admitted at. */
  private costOf(resolved: ResolvedModel, request: TaskRequest): Cost {
    return admissionCostOf(resolved, request, request.maxTokens ?? this.defaultMaxTokens);
  }

  private handleFor(task: Task): TaskHandle {
    return {
      id: task.id,
      result: () => this.result(task.id),
      status: () => task.status(this.clock.now()),
      cancel: () => this.cancel(task.id),
      // A task that has ended has no events left: its iterator ends at once rather than waiting for ever.
      events: () => (isTerminal(task.state) ? EventHub.ended() : this.hub.stream({ taskIds: [task.id], until: isEnd })),
    };
  }

  private gatherEntries<T>(
    items: readonly T[],
    toRequest: (item: T, index: number) => TaskRequest,
    options: GatherOptions,
  ): Promise<GatherOutcome[]> {
    return new Promise((resolve, reject) => {
      const gather = new Gather(this, items.length, options, resolve, reject);
      options.signal?.addEventListener('abort', () => gather.cancelAll(), { once: true });
      for (let index = 0; index < items.length; index++) {
        let task: Task;
        try {
          task = this.createTask(toRequest(items[index] as T, index));
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

  /** @internal The outcome of an ended task; its `status` is computed when first read. */
  outcomeOf(task: Task): TaskOutcome {
    return new Outcome(task, task.endedAt ?? this.clock.now()) as unknown as TaskOutcome;
  }

  private whenSettled(task: Task, callback: (task: Task) => void): void {
    if (isTerminal(task.state)) callback(task);
    else (task.waiters ??= []).push(callback);
  }

  // ── attempts ──────────────────────────────────────────────────────────────

  private startAttempt(task: Task, reservation: Reservation): void {
    const now = this.clock.now();
    const request = task.request;
    const attempts = (task.attempts ??= []);
    const attempt = attempts.length + 1;
    attempts.push({ attempt, startedAt: now });
    if (task.journal)
      task.lease = { attempt: `${task.id}:${attempt}`, until: now + (request.attemptTimeoutMs ?? this.leaseMs) };
    task.moveTo('processing', now);
    task.reservation = reservation;
    const resolved = task.model as ResolvedModel;
    const maxTokens = request.maxTokens ?? this.defaultMaxTokens;
    const limits = this.timeouts.get(resolved.provider.name) as Required<CallTimeouts>;
    const firstByteMs = request.stream
      ? limits.firstByteMs
      : limits.firstByteMs + Math.ceil(maxTokens * limits.perOutputTokenMs);
    const context = new Attempt(attempt, this.clock, now, firstByteMs, limits.idleMs);
    task.current = context;
    this.watchdog.add(context);
    if (this.limiter.isProbing(task.key)) this.probes.set(task.key, context);
    let cancelTimeout: (() => void) | undefined;
    if (request.attemptTimeoutMs !== undefined) {
      const ms = request.attemptTimeoutMs;
      cancelTimeout = this.clock.setTimer(ms, () =>
        context.abort(new FanoutError('timeout', `attempt ${attempt} timed out after ${ms} ms`, { retryable: true })),
      );
    }
    if (this.hub.active) this.emitTask('task-started', task, now, { attempt });
    const call: ModelCall = {
      model: resolved.modelName,
      messages: request.messages,
      system: request.system,
      cacheSystem: request.cacheSystem,
      maxTokens,
      temperature: request.temperature,
      topP: request.topP,
      stop: request.stop,
      seed: request.seed,
      latency: request.latency,
      providerOptions: request.providerOptions,
    };
    const running = request.stream
      ? this.consumeStream(task, resolved, call, context)
      : resolved.provider.complete(call, context);
    running.then(
      (result) => {
        cancelTimeout?.();
        this.succeeded(task, attempt, resolved, result);
      },
      (error: unknown) => {
        cancelTimeout?.();
        this.attemptFailed(task, attempt, resolved, context.reason ?? error);
      },
    );
  }

  private async consumeStream(
    task: Task,
    resolved: ResolvedModel,
    call: ModelCall,
    context: Attempt,
  ): Promise<ModelResult> {
    let result: ModelResult | undefined;
    for await (const event of resolved.provider.stream(call, context)) {
      context.alive();
      if (event.type === 'done') result = event.result;
      else if (
        this.hub.wants('task-delta') &&
        task.attempts?.length === context.attempt &&
        task.state === 'processing'
      ) {
        this.emitTask('task-delta', task, this.clock.now(), { attempt: context.attempt, delta: event.text });
      }
    }
    if (!result)
      throw new ProviderError('server_error', 'the stream ended without a final result', {
        provider: resolved.provider.name,
        retryable: true,
      });
    return result;
  }

  private isCurrent(task: Task, attempt: number): boolean {
    return task.state === 'processing' && task.attempts?.length === attempt;
  }

  /** Closes the running attempt: settles its permit and frees its slot. */
  private endAttempt(task: Task, now: number, end: AttemptEnd, actual?: Cost): void {
    const record = task.attempts?.[task.attempts.length - 1];
    if (record) {
      record.endedAt = now;
      record.outcome = end.outcome;
      if (end.error) {
        const e = end.error;
        record.error = { code: e.code, message: e.message };
        if (e instanceof ProviderError) {
          if (e.status !== undefined) record.error.status = e.status;
          if (e.retryAfterMs !== undefined) record.error.retryAfterMs = e.retryAfterMs;
          if (e.requestId !== undefined) record.requestId = e.requestId;
        }
      }
    }
    if (task.reservation) {
      this.limiter.settle(task.reservation, now, actual);
      task.reservation = undefined;
      if (task.tenantReservation) {
        this.tenantLimiter?.settle(task.tenantReservation, now, actual);
        task.tenantReservation = undefined;
      }
      this.scheduler.released(task);
    }
    if (task.current) {
      this.watchdog.delete(task.current);
      if (this.probes.get(task.key) === task.current) this.probes.delete(task.key);
    }
    task.current = undefined;
  }

  /**
   * The first call on a key of unknown limits is sent alone, for its answer to
   * say the limits. When it fails, or has had no answer for
   * `PROBE_PATIENCE_MS`, the key's other calls stop waiting for it and go a
   * few at a time (`MODEST_CONCURRENCY`, growing with successes, as after a 429).
   */
  private openStalledProbes(now: number): void {
    for (const [key, probe] of this.probes) {
      if (now - probe.startedAt < PROBE_PATIENCE_MS) continue;
      this.openProbe(key);
    }
  }

  private openProbe(key: string): void {
    this.probes.delete(key);
    if (this.limiter.stopProbing(key, MODEST_CONCURRENCY)) this.scheduler.unblock(key);
  }

  private succeeded(task: Task, attempt: number, resolved: ResolvedModel, result: ModelResult): void {
    if (!this.isCurrent(task, attempt)) return;
    const now = this.clock.now();
    const reserved = task.reservation?.cost ?? task.cost;
    this.limiter.succeeded(task.key);
    if (result.rateLimit) this.learn(task.key, result.rateLimit, now);
    // A key that limits no tokens needs no settled token count: its reservation stands.
    const actual = resolved.countsTokens ? settledCost(resolved.accounting, reserved, result.usage) : undefined;
    const record = task.attempts?.[task.attempts.length - 1];
    if (record) {
      const times = this.callTimes.get(task.request.model);
      if (times) {
        times.count += 1;
        times.totalMs += now - record.startedAt;
      } else {
        this.callTimes.set(task.request.model, { count: 1, totalMs: now - record.startedAt });
      }
    }
    this.endAttempt(task, now, COMPLETED, actual);
    if (result.requestId !== undefined && task.attempts)
      (task.attempts[task.attempts.length - 1] as AttemptRecord).requestId = result.requestId;
    task.result = result;
    this.finish(task, 'completed', now);
  }

  private attemptFailed(task: Task, attempt: number, resolved: ResolvedModel, raw: unknown): void {
    if (!this.isCurrent(task, attempt)) return;
    const now = this.clock.now();
    const error = asFanoutError(raw);
    this.endAttempt(
      task,
      now,
      { outcome: 'failed', error },
      task.reservation ? failedCost(task.reservation.cost) : undefined,
    );
    if (this.hub.active) this.emitTask('attempt-failed', task, now, { attempt, error: errorSummary(error) });
    if (error instanceof ProviderError) {
      // The provider refused what fanout's limits let through: learn from what it said, and send less at once.
      if (error.rateLimit) this.learn(task.key, error.rateLimit, now);
      if (error.code === 'rate_limited') this.limiter.backOff(task.key, now);
    }
    if (this.limiter.isProbing(task.key)) this.openProbe(task.key);
    const maxAttempts = task.request.maxAttempts ?? this.retry.maxAttempts;
    const decision = decideRetry(error, attempt, maxAttempts, this.retry, this.random);
    this.applyCooldown(resolved.key, error, decision.retry ? decision.delayMs : undefined, now);
    if (!decision.retry) {
      const final =
        decision.reason === 'attempts_exhausted' && attempt > 1
          ? new RetryError(
              'retries_exhausted',
              `failed after ${attempt} attempts; last error: ${error.message}`,
              error,
              task.attempts ?? [],
            )
          : error;
      this.fail(task, final);
      return;
    }
    const readyAt = now + decision.delayMs;
    if (readyAt > task.deadlineAt) {
      this.fail(
        task,
        new RetryError(
          'deadline_exceeded',
          `the next attempt would start after the task's deadline; last error: ${error.message}`,
          error,
          task.attempts ?? [],
        ),
      );
      return;
    }
    task.readyAt = readyAt;
    task.moveTo('rate_limited', now);
    task.eta = readyAt;
    if (this.hub.active)
      this.emitTask('task-retrying', task, now, { attempt, eta: readyAt, waitMs: decision.delayMs, reason: 'retry' });
    this.scheduler.delay(task);
  }

  /**
   * Takes in what a provider's headers said of `key`'s limits. When they
   * bring a token limit fanout did not know, the key's calls are from then on
   * charged their input and settled to their use, and the tasks waiting on it
   * are charged again so (their charge was their max tokens alone).
   */
  private learn(key: string, info: RateLimitInfo, now: number): void {
    if (!this.limiter.observe(key, observedLimits(info), now)) return;
    if (!this.models.countTokensOn(key)) return;
    for (const task of this.tasks.values()) {
      if (task.key === key && (task.state === 'queued' || task.state === 'rate_limited') && !task.reservation)
        task.cost = this.costOf(task.model as ResolvedModel, task.request);
    }
  }

  /**
   * A provider's "wait" applies to the whole limit key, not only to the task
   * that heard it: every other call on the key would be refused too.
   */
  private applyCooldown(key: string, error: FanoutError, delayMs: number | undefined, now: number): void {
    const hint = error instanceof ProviderError ? error.retryAfterMs : undefined;
    const wait = hint ?? (error.code === 'rate_limited' ? delayMs : undefined);
    if (wait === undefined || wait <= 0) return;
    this.limiter.cooldown(key, now + wait, now);
    if (this.hub.active) this.hub.emit({ type: 'limit-wait', at: now, key, waitMs: wait, reason: 'cooldown' });
  }

  // ── state changes ─────────────────────────────────────────────────────────

  private holdBack(task: Task, eta: number, reason: WaitReason): void {
    const now = this.clock.now();
    const entering = task.state !== 'rate_limited';
    if (entering) task.moveTo('rate_limited', now);
    task.eta = eta;
    if (!this.hub.active) return;
    if (entering) this.emitTask('task-rate-limited', task, now, { eta, reason });
    this.hub.emit({ type: 'limit-wait', at: now, key: task.key, waitMs: eta - now, reason });
  }

  private requeue(task: Task): void {
    const now = this.clock.now();
    task.moveTo('queued', now);
    if (this.hub.active) this.emitTask('task-queued', task, now, {});
  }

  /** Ends a task that has not ended: its call (if any) is aborted and its permit settled. */
  private cancelWith(task: Task, error: FanoutError, state: 'cancelled' | 'failed'): void {
    const now = this.clock.now();
    const signal = task.current;
    if (task.state === 'processing')
      this.endAttempt(
        task,
        now,
        { outcome: state === 'cancelled' ? 'cancelled' : 'failed', error },
        task.reservation ? failedCost(task.reservation.cost) : undefined,
      );
    signal?.abort(error);
    task.error = error;
    this.finish(task, state, now);
  }

  private expire(task: Task): void {
    if (isTerminal(task.state)) return;
    this.cancelWith(
      task,
      new FanoutError('deadline_exceeded', `task ${task.id} passed its deadline of ${task.request.deadlineMs} ms`),
      'failed',
    );
  }

  private fail(task: Task, error: FanoutError): void {
    task.error = error;
    this.finish(task, 'failed', this.clock.now());
  }

  private finish(task: Task, state: 'completed' | 'failed' | 'cancelled', now: number): void {
    task.endedAt = now;
    task.moveTo(state, now);
    task.cancelDeadline?.();
    task.cancelDeadline = undefined;
    const waiters = task.waiters;
    task.waiters = undefined;
    if (this.hub.active) {
      const type = state === 'completed' ? 'task-completed' : state === 'failed' ? 'task-failed' : 'task-cancelled';
      this.emitTask(
        type,
        task,
        now,
        state === 'completed' ? { result: task.result } : { error: errorSummary(task.error as FanoutError) },
      );
    }
    if (waiters) for (const waiter of waiters) waiter(task);
    task.observer?.taskEnded(task, task.slot);
    if (task.cache) this.settleFollowers(task, now);
    task.observer = undefined;
    this.forgetOldEnded(task.id);
    this.pending -= 1;
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of idle) resolve();
    }
  }

  private forgetOldEnded(id: string): void {
    this.ended.push(id);
    if (this.ended.length - this.endedHead <= this.maxEndedTasks) return;
    this.tasks.delete(this.ended[this.endedHead] as string);
    this.endedHead += 1;
    if (this.endedHead > 4096 && this.endedHead * 2 > this.ended.length) {
      this.ended = this.ended.slice(this.endedHead);
      this.endedHead = 0;
    }
  }

  private emitTask<T extends TaskEvent['type']>(
    type: T,
    task: Task,
    now: number,
    extra: Omit<EventOf<T>, keyof TaskEventBase | 'type'>,
  ): void {
    if (!this.hub.wants(type)) return;
    const base: TaskEventBase = {
      at: now,
      taskId: task.id,
      label: task.request.label,
      key: task.key,
      state: task.state,
    };
    this.hub.emit({ type, ...base, ...extra } as EventOf<T>);
  }
}

const identity = <T>(value: T): T => value;

/** The handle of a task that ended before this engine's time, as its store kept it. */
function storedHandle(row: TaskRow): TaskHandle {
  const status = statusFromRow(row);
  const error = new FanoutError(row.error?.code ?? 'cancelled', row.error?.message ?? `task ${row.id} was cancelled`);
  return {
    id: row.id,
    result: () => (row.state === 'completed' && row.result ? Promise.resolve(row.result) : Promise.reject(error)),
    status: () => status,
    cancel: () => false,
    events: () => EventHub.ended(),
  };
}

/** How an attempt ended; `COMPLETED` is shared so the common case allocates nothing. */
interface AttemptEnd {
  outcome: 'completed' | 'failed' | 'cancelled';
  error?: FanoutError;
}
const COMPLETED: AttemptEnd = Object.freeze({ outcome: 'completed' });

function errorSummary(error: FanoutError): EventError {
  const summary: EventError = { code: error.code, message: error.message };
  if (error instanceof ProviderError && error.status !== undefined) summary.status = error.status;
  return summary;
}

/** The providers of an options object, whichever form they were given in. */
export function providerList(providers: EngineOptions['providers']): Provider[] {
  return Array.isArray(providers) ? providers : Object.values(providers ?? {});
}
