import type { CallTimeouts } from '../contracts/provider.js';
import type { CacheOptions } from './result-cache.js';
import type { Limiter, LimitSpec } from '../contracts/limiter.js';
import type { Provider } from '../contracts/provider.js';
import type { TaskStore } from '../contracts/task-store.js';
import type { Clock } from '../contracts/clock.js';
import type { EngineEvent } from './events.js';
import type { ModelSettings } from './models.js';
import type { Random } from '../contracts/random.js';
import type { RetryOptions } from './retry.js';
import type { TaskStatus } from './task.js';
import type { ModelResult } from '../contracts/types.js';

export interface EngineOptions {
  /** Time source. Default: the system clock. Tests pass `ManualClock`. */
  clock?: Clock;
  /** Randomness for retry jitter and ids. Default: Math.random. */
  random?: Random;
  /** Providers, each under its `name` (the prefix of `provider:model`). `createEngine` adds `mock` unless one is given. */
  providers?: Record<string, Provider> | Provider[];
  /**
   * Where the models' limits are kept and enforced. Default: a `MemoryLimiter`
   * of this engine's own. Another implementation of `Limiter` (one shared by
   * several processes, say) must pass `limiterContract` from `fanout/testing/contracts`.
   */
  limiter?: Limiter;
  /** Per-model settings, keyed `provider:model`, `provider:*` (every model of a provider) or `*` (every model). */
  models?: Record<string, ModelSettings>;
  /** Named limit groups that several models share through `models[...].group`. */
  groups?: Record<string, LimitSpec>;
  /** Calls in flight across the whole engine (the worker pool). Default 256. */
  concurrency?: number;
  retry?: RetryOptions;
  /** Max output tokens sent and reserved when a request names none. Default 1,024. */
  defaultMaxTokens?: number;
  /**
   * How long a call may go without a sign of its answer (see `CallTimeouts`),
   * for every provider that sets none of its own (`Provider.timeouts`).
   * Default: 60 s to the first byte, 60 s of silence in a stream, and a
   * non-streamed answer 50 ms more per token of its max tokens.
   */
  callTimeouts?: CallTimeouts;
  /** Task id generator. Default: random prefix plus counter. */
  ids?: () => string;
  /**
   * Keeps every task in a store, so that a new engine on the same store
   * carries on after a crash: tasks that were queued, rate-limited or in a
   * call run again (a lost call counts as a failed attempt); ended tasks stay
   * as they are. Writes are grouped: one transaction every 5 ms at most.
   */
  store?: TaskStore;
  /**
   * With a store, take back at start the tasks an earlier run left unfinished
   * (`recovered`). Default true. False for an engine that shares its store
   * with others and is handed its work (`adopt`) by a queue: it must not take
   * tasks another live process is running.
   */
  resume?: boolean;
  /** How long an attempt holds its task in the store, in ms. Default: its attempt timeout, else 10 minutes. */
  leaseMs?: number;
  /**
   * The result cache and single-flight: `false` turns both off. Default: on,
   * in memory, answers kept 24 hours (see `TaskRequest.cache` for which
   * requests use it).
   */
  cache?: false | CacheOptions;
  /**
   * How tenants share the engine: every limit key and the worker pool by
   * weighted fair queuing (one tenant's flood delays another's call by at most
   * one call per key), each tenant's own limits and cap of calls in flight.
   */
  tenants?: TenantOptions;
  /**
   * Ended tasks whose status stays available through `status(id)`; beyond
   * this, the oldest ended ones are forgotten (their results are still with
   * whoever awaited them). Default 50,000.
   */
  maxEndedTasks?: number;
}

/** How tenants (the requests' `tenant`) share one engine. */
export interface TenantOptions {
  /** Each tenant's share of every limit key and of the worker pool, relative to others; default 1. */
  weights?: Record<string, number>;
  /** Calls in flight one tenant may have at once, across all models. Default: no cap but the pool's. */
  maxInFlight?: number;
  /**
   * Each tenant's own limits (requests, tokens per minute...), on top of the
   * models' limits, for every way of submitting. A tenant past them waits
   * (`rate_limited`) without holding back the others.
   */
  limits?: LimitSpec;
}

export interface SubmitOptions {
  /** The batch and input line the task answers, kept with it in the store so a batch can resume. */
  batch?: { id: string; line: number };
  /**
   * Keep the task in the engine's store (default: true when it has one). A
   * call whose caller holds the connection open for the answer, as the
   * gateway's are, is better left out: after a restart nobody would read it,
   * so running it again would only cost.
   */
  durable?: boolean;
  /** Already charged to its tenant's limits (`tenantLimiter`) by the caller: not charged again. */
  tenantCharged?: boolean;
  /** The task's id, instead of a generated one. `submit` refuses an id already in use; `submitOnce` returns that task. */
  id?: string;
}

/** A submitted task: its id and the ways to follow it. */
export interface TaskHandle {
  readonly id: string;
  /** Resolves with the result; rejects with the error if the task fails or is cancelled. */
  result(): Promise<ModelResult>;
  status(): TaskStatus;
  cancel(): boolean;
  /** This task's events from now on, ending with its final event; for a task that has ended, an iterator that ends at once. */
  events(): AsyncIterableIterator<EngineEvent>;
}
