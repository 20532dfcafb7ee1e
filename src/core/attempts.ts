import type { Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError, ProviderError, RetryError } from '../contracts/errors.js';
import type { Cost, Limiter, Reservation } from '../contracts/limiter.js';
import type { CallTimeouts, ModelCall } from '../contracts/provider.js';
import type { Random } from '../contracts/random.js';
import type { ModelResult, RateLimitInfo, TaskRequest } from '../contracts/types.js';
import { failedCost, settledCost } from '../limits/accounting.js';
import { estimateInputTokens } from '../limits/estimate.js';
import { observedLimits } from '../limits/learning.js';
import { errorSummary, type EventHub } from './events.js';
import { outputCeiling, type ResolvedModel } from './models.js';
import { decideRetry, type RetryOptions } from './retry.js';
import { outputCheck } from './output-check.js';
import type { TaskBoard } from './task-board.js';
import { Attempt, type Task } from './task.js';
import { CallWatchdog, DEFAULT_CALL_TIMEOUTS } from './watchdog.js';

/** How long the first call on a key of unknown limits holds back the rest before they go a few at a time. */
export const PROBE_PATIENCE_MS = 15_000;
/** Calls in flight at once on a key of unknown limits whose first call failed or hung. */
export const MODEST_CONCURRENCY = 4;

/** What the attempts ask of the scheduler. */
export interface AttemptScheduler {
  /** A call ended: its slot is free. */
  released(task: Task): void;
  /** The task waits for `task.readyAt` before it goes back in its queue. */
  delay(task: Task): void;
  /** The key's calls may go again (its probe is over). */
  unblock(key: string): void;
}

export interface AttemptSettings {
  clock: Clock;
  random: Random;
  hub: EventHub;
  board: TaskBoard;
  limiter: Limiter;
  tenantLimiter?: Limiter;
  scheduler: AttemptScheduler;
  retry: Required<RetryOptions>;
  defaultMaxTokens: number;
  leaseMs: number;
  /** Each provider's call timeouts, by provider name. */
  timeouts: ReadonlyMap<string, Required<CallTimeouts>>;
  /** Whether `key` charges tokens (so a learned token limit changes what waiting tasks are charged). */
  countsTokens(key: string): boolean;
  /** The charge a request is admitted at. */
  costOf(model: ResolvedModel, request: TaskRequest): Cost;
}

/**
 * Runs the attempts of tasks: sends each call under its permit, watches it,
 * settles the permit to what the call used, learns from what the provider
 * said of its limits, and on failure decides (with `decideRetry`) whether the
 * task waits and goes again or fails. A provider's "wait" applies to the
 * whole limit key.
 */
export class Attempts {
  /** Every call in flight, watched for a provider that has stopped answering. */
  private readonly watchdog: CallWatchdog<Attempt>;
  /** The call sent first on a key whose limits are not known yet, while it is the only one allowed. */
  private readonly probes = new Map<string, Attempt>();
  /** Provider time of completed calls per model: the count and the sum, in ms. */
  private readonly callTimes = new Map<string, { count: number; totalMs: number }>();

  constructor(private readonly s: AttemptSettings) {
    this.watchdog = new CallWatchdog(s.clock, (_, now) => this.openStalledProbes(now));
  }

  /** A permit was granted: the task's next attempt starts now. */
  start(task: Task, reservation: Reservation): void {
    const { clock, board } = this.s;
    const now = clock.now();
    const request = task.request;
    const resolved = task.model;
    const maxTokens = outputCeiling(resolved, request, this.s.defaultMaxTokens);
    const limits = this.s.timeouts.get(resolved.provider.name) ?? DEFAULT_CALL_TIMEOUTS;
    const firstByteMs = request.stream
      ? limits.firstByteMs
      : limits.firstByteMs + Math.ceil(maxTokens * limits.perOutputTokenMs);
    const context = new Attempt(task.attemptCount + 1, clock, now, firstByteMs, limits.idleMs);
    const attempt = task.beginAttempt(reservation, context, now, now + (request.attemptTimeoutMs ?? this.s.leaseMs));
    this.watchdog.add(context);
    if (this.s.limiter.isProbing(task.key)) this.probes.set(task.key, context);
    let cancelTimeout: (() => void) | undefined;
    if (request.attemptTimeoutMs !== undefined) {
      const ms = request.attemptTimeoutMs;
      cancelTimeout = clock.setTimer(ms, () =>
        context.abort(new FanoutError('timeout', `attempt ${attempt} timed out after ${ms} ms`, { retryable: true })),
      );
    }
    if (this.s.hub.active) board.emit('task-started', task, now, { attempt });
    const call = modelCall(request, resolved, maxTokens);
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
        this.failed(task, attempt, context.reason ?? error);
      },
    );
  }

  /** Ends the running attempt of a task that is being cancelled or failed from outside, and aborts its call. */
  abort(task: Task, error: FanoutError, outcome: 'cancelled' | 'failed', now: number): void {
    const call = task.current;
    this.close(task, now, outcome, error, task.reservation ? failedCost(task.reservation.cost) : undefined);
    call?.abort(error);
  }

  /** The mean provider time of completed calls on `model`, in ms; undefined before the first. */
  averageCallMs(model: string): number | undefined {
    const times = this.callTimes.get(model);
    return times ? times.totalMs / times.count : undefined;
  }

  /** When the call in flight longest started, or undefined when none is in flight. */
  oldestStartedAt(): number | undefined {
    return this.watchdog.oldestStartedAt();
  }

  stop(): void {
    this.watchdog.stop();
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
      else if (this.s.hub.wants('task-delta') && task.isRunning(context.attempt)) {
        const delta =
          event.type === 'delta'
            ? { attempt: context.attempt, delta: event.text, ...(event.logprobs ? { logprobs: event.logprobs } : {}) }
            : event.type === 'reasoning-delta'
              ? { attempt: context.attempt, delta: '', reasoning: event.text }
              : { attempt: context.attempt, delta: '', toolCall: event.call };
        this.s.board.emit('task-delta', task, this.s.clock.now(), delta);
      }
    }
    if (!result)
      throw new ProviderError('server_error', 'the stream ended without a final result', {
        provider: resolved.provider.name,
        retryable: true,
      });
    return result;
  }

  /** Closes the running attempt: records how it ended, settles its permits and frees its slot. */
  private close(
    task: Task,
    now: number,
    outcome: 'completed' | 'failed' | 'cancelled',
    error?: FanoutError,
    actual?: Cost,
    requestId?: string,
  ): void {
    const call = task.current;
    task.endAttempt(now, outcome, error, requestId);
    const { reservation, tenantReservation } = task;
    if (reservation) {
      task.dropPermits();
      this.s.limiter.settle(reservation, now, actual);
      if (tenantReservation) this.s.tenantLimiter?.settle(tenantReservation, now, actual);
      this.s.scheduler.released(task);
    }
    if (call) {
      this.watchdog.delete(call);
      if (this.probes.get(task.key) === call) this.probes.delete(task.key);
    }
  }

  private succeeded(task: Task, attempt: number, resolved: ResolvedModel, answer: ModelResult): void {
    if (!task.isRunning(attempt)) return;
    const now = this.s.clock.now();
    const reserved = task.reservation?.cost ?? task.cost;
    this.s.limiter.succeeded(task.key);
    if (answer.rateLimit) this.learn(task.key, answer.rateLimit, now);
    // A key that limits no tokens needs no settled token count: its reservation stands.
    const actual = resolved.countsTokens ? settledCost(resolved.accounting, reserved, answer.usage) : undefined;
    if (resolved.countsTokens && !resolved.provider.countInputTokens && !answer.cache)
      learnInputCount(resolved, task, answer);
    let result = answer;
    const format = task.request.responseFormat;
    // An answer that calls tools has no JSON of its own to check: the format applies to the final answer.
    if (format && task.request.checkOutput !== false && !answer.toolCalls?.length) {
      try {
        result = outputCheck.check(answer, format);
      } catch (error) {
        // The call was made and answered: it is charged what it used, and asked again.
        const invalid = asFanoutError(error);
        this.close(task, now, 'failed', invalid, actual, answer.requestId);
        this.retryOrFail(task, attempt, invalid, now);
        return;
      }
    }
    const startedAt = task.current?.startedAt ?? now;
    const times = this.callTimes.get(task.request.model);
    if (times) {
      times.count += 1;
      times.totalMs += now - startedAt;
    } else {
      this.callTimes.set(task.request.model, { count: 1, totalMs: now - startedAt });
    }
    this.close(task, now, 'completed', undefined, actual, result.requestId);
    this.s.board.complete(task, result, now);
  }

  private failed(task: Task, attempt: number, raw: unknown): void {
    if (!task.isRunning(attempt)) return;
    const { clock, limiter } = this.s;
    const now = clock.now();
    const error = asFanoutError(raw);
    this.close(task, now, 'failed', error, task.reservation ? failedCost(task.reservation.cost) : undefined);
    if (error instanceof ProviderError) {
      // The provider refused what fanout's limits let through: learn from what it said, and send less at once.
      if (error.rateLimit) this.learn(task.key, error.rateLimit, now);
      if (error.code === 'rate_limited') limiter.backOff(task.key, now);
    }
    if (limiter.isProbing(task.key)) this.openProbe(task.key);
    this.retryOrFail(task, attempt, error, now);
  }

  /** After a failed attempt: the task waits and goes again, or fails with why. */
  private retryOrFail(task: Task, attempt: number, error: FanoutError, now: number): void {
    const { board } = this.s;
    if (this.s.hub.active) board.emit('attempt-failed', task, now, { attempt, error: errorSummary(error) });
    const maxAttempts = task.request.maxAttempts ?? this.s.retry.maxAttempts;
    const decision = decideRetry(error, attempt, maxAttempts, this.s.retry, this.s.random);
    this.cooldown(task.key, error, decision.retry ? decision.delayMs : undefined, now);
    if (!decision.retry) {
      const exhausted = decision.reason === 'attempts_exhausted' && attempt > 1;
      const message = `failed after ${attempt} attempts; last error: ${error.message}`;
      board.fail(task, exhausted ? new RetryError('retries_exhausted', message, error, task.attempts ?? []) : error);
      return;
    }
    const readyAt = now + decision.delayMs;
    if (readyAt > task.deadlineAt) {
      const message = `the next attempt would start after the task's deadline; last error: ${error.message}`;
      board.fail(task, new RetryError('deadline_exceeded', message, error, task.attempts ?? []));
      return;
    }
    board.retry(task, attempt, readyAt, now);
    this.s.scheduler.delay(task);
  }

  /**
   * Takes in what a provider's headers said of `key`'s limits. When they
   * bring a token limit fanout did not know, the key's calls are from then on
   * charged their input and settled to their use, and the tasks waiting on it
   * are charged again so (their charge was their max tokens alone).
   */
  private learn(key: string, info: RateLimitInfo, now: number): void {
    if (!this.s.limiter.observe(key, observedLimits(info), now)) return;
    if (!this.s.countsTokens(key)) return;
    for (const task of this.s.board.values())
      if (task.key === key) task.recharge(this.s.costOf(task.model, task.request));
  }

  /**
   * A provider's "wait" applies to the whole limit key, not only to the task
   * that heard it: every other call on the key would be refused too.
   */
  private cooldown(key: string, error: FanoutError, delayMs: number | undefined, now: number): void {
    const hint = error instanceof ProviderError ? error.retryAfterMs : undefined;
    const wait = hint ?? (error.code === 'rate_limited' ? delayMs : undefined);
    if (wait === undefined || wait <= 0) return;
    this.s.limiter.cooldown(key, now + wait, now);
    if (this.s.hub.active) this.s.hub.emit({ type: 'limit-wait', at: now, key, waitMs: wait, reason: 'cooldown' });
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
    if (this.s.limiter.stopProbing(key, MODEST_CONCURRENCY)) this.s.scheduler.unblock(key);
  }
}

/** Calibrates the model's input estimate by what its provider counted for this call (cached and uncached input alike). */
function learnInputCount(resolved: ResolvedModel, task: Task, answer: ModelResult): void {
  const { inputTokens, cacheReadTokens, cacheWriteTokens } = answer.usage;
  resolved.calibration.observe(estimateInputTokens(task.request), inputTokens + cacheReadTokens + cacheWriteTokens);
}

/** What the provider is asked: the request as the model's provider takes it. */
function modelCall(request: TaskRequest, resolved: ResolvedModel, maxTokens: number): ModelCall {
  return {
    model: resolved.modelName,
    messages: request.messages,
    system: request.system,
    cacheSystem: request.cacheSystem,
    maxTokens,
    maxTokensDefaulted: request.maxTokens === undefined,
    maxTokensField: request.maxTokensField,
    temperature: request.temperature,
    topP: request.topP,
    stop: request.stop,
    seed: request.seed,
    latency: request.latency,
    providerOptions: request.providerOptions,
    tools: request.tools,
    toolChoice: request.toolChoice,
    parallelToolCalls: request.parallelToolCalls,
    responseFormat: request.responseFormat,
    reasoning: request.reasoning,
    passthrough: request.passthrough,
  };
}
