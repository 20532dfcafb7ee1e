import { ZERO_COST, type Limiter, type LimitSpec, type Reservation, type WaitReason } from '../contracts/limiter.js';
import type { Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { Heap } from './heap.js';
import { isTerminal } from '../contracts/task-state.js';
import { FairQueue } from './fair-queue.js';
import { runsBefore, type Task } from './task.js';

/** What the scheduler asks of the engine. */
export interface SchedulerHooks {
  /** A permit was granted (and the tenant's, in `task.tenantReservation`, when tenants have limits): run the task's next attempt now. */
  start(task: Task, reservation: Reservation): void;
  /** The task at the head of its key must wait for a permit until `eta`. */
  holdBack(task: Task, eta: number, reason: WaitReason): void;
  /** A retry wait is over: the task goes back to its key's queue. */
  requeue(task: Task): void;
  /** The task can never run (too large for a limit) or ran out of time. */
  reject(task: Task, error: FanoutError): void;
}

/** How tenants share the engine. */
export interface TenantPolicy {
  /** A tenant's share relative to others (default 1): a tenant of weight 2 gets two calls' turns to another's one. */
  weightOf(tenant: string): number;
  /** Calls in flight one tenant may have at once, across all keys. */
  maxInFlight: number;
  /** Each tenant's own limits, charged to `limiter` under the tenant's name, on top of the models' limits. */
  limits?: LimitSpec;
  limiter?: Limiter;
}

/** One tenant's share of the worker pool. */
interface TenantShare {
  /** Virtual time of the tenant's next start in the pool: advanced by 1 / weight per call started. */
  start: number;
  inFlight: number;
  /** Tasks of the tenant waiting in key queues. */
  queued: number;
  /** No call of this tenant before this time: its own limits are spent (epoch ms). */
  blockedUntil: number;
}

interface KeyQueue {
  key: string;
  queue: FairQueue;
  /** No permit before this time (epoch ms). */
  blockedUntil: number;
  /** Every concurrency slot of the key is taken; wait for a call to end. */
  waitingForSlot: boolean;
}

/**
 * Decides which task runs next. Event-driven, with no polling loop: it runs
 * when a task arrives, when a call ends (a slot and maybe tokens come back),
 * and at the earliest time a blocked key or a retry wait becomes ready, on a
 * single timer.
 *
 * Order and starvation policy:
 * - Across the engine, the most urgent ready task goes first: higher
 *   priority, then earlier submission (FIFO within a priority). A retried task
 *   keeps its place, so it goes before tasks submitted after it.
 * - Within a limit key the head of the queue is never overtaken by a task of
 *   the same or lower priority: a small request behind a big one waits until
 *   the big one is admitted. That wait is bounded: a request never costs more
 *   than one window's limit (larger ones fail at once with
 *   `request_too_large`), so the head is admitted within one refill of its
 *   cost, at most one window (60 s for per-minute limits; a day for a
 *   per-day request limit, which binds every request alike). Without a bound
 *   like this, a stream of small requests could keep a big one from ever
 *   finding enough tokens.
 * - Keys are independent: a key waiting for tokens never holds back another key.
 * - Higher priorities are served first without aging: a low-priority task
 *   waits while higher-priority work is ready.
 * - Tenants share each key and the worker pool by weighted fair queuing
 *   (`FairQueue`): a tenant's call waits for at most one call of each other
 *   tenant on its key, however much they have queued; priority and submission
 *   order apply within a tenant's own work only. A tenant at its own limits or
 *   at its cap of calls in flight waits without holding back the others.
 */
export class Scheduler {
  private readonly queues = new Map<string, KeyQueue>();
  private readonly active = new Set<KeyQueue>();
  private readonly delayed = new Heap<Task>(
    (a, b) => a.readyAt < b.readyAt || (a.readyAt === b.readyAt && runsBefore(a, b)),
  );
  private pumpPending = false;
  private cancelTimer?: () => void;
  private timerAt = Number.POSITIVE_INFINITY;
  private running = 0;
  private closed = false;
  private readonly tenants = new Map<string, TenantShare>();
  /** The pool's virtual time: the start of the call started last. */
  private poolNow = 0;
  private readonly isOpen: (tenant: string) => boolean;
  private nowForOpen = 0;

  private readonly stopListening: (() => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly limiter: Limiter,
    private readonly hooks: SchedulerHooks,
    private readonly concurrency: number,
    private readonly policy: TenantPolicy = { weightOf: () => 1, maxInFlight: Number.POSITIVE_INFINITY },
  ) {
    this.isOpen = (tenant) => {
      const share = this.tenants.get(tenant);
      return !share || (share.inFlight < this.policy.maxInFlight && share.blockedUntil <= this.nowForOpen);
    };
    // A shared limiter says when a key it held back may admit again (its share of the budget came).
    this.stopListening = limiter.onChange?.((key) => this.unblock(key));
  }

  /** Calls in flight across the engine. */
  get inFlight(): number {
    return this.running;
  }

  /** Adds a queued task to its key's queue. */
  enqueue(task: Task): void {
    this.push(task);
    this.wake();
  }

  private push(task: Task): void {
    const queue = this.queueFor(task.key);
    queue.queue.push(task);
    this.active.add(queue);
    this.shareOf(task.tenant).queued += 1;
  }

  private shareOf(tenant: string): TenantShare {
    let share = this.tenants.get(tenant);
    if (!share) {
      share = { start: this.poolNow, inFlight: 0, queued: 0, blockedUntil: 0 };
      this.tenants.set(tenant, share);
    }
    return share;
  }

  /** Forgets a tenant with nothing queued or in flight: an idle tenant banks no turns, and the map stays small. */
  private forgetIdle(tenant: string, share: TenantShare): void {
    if (share.queued <= 0 && share.inFlight <= 0 && share.blockedUntil <= this.clock.now()) this.tenants.delete(tenant);
  }

  /** Holds a task (already rate_limited) until its `readyAt`. */
  delay(task: Task): void {
    this.delayed.push(task);
    this.wake();
  }

  /** A call of `task` ended: its slot is free, and a refund may have made room. */
  released(task: Task): void {
    this.running -= 1;
    const share = this.tenants.get(task.tenant);
    if (share) {
      share.inFlight -= 1;
      this.forgetIdle(task.tenant, share);
    }
    const queue = this.queues.get(task.key);
    if (queue) {
      queue.waitingForSlot = false;
      queue.blockedUntil = 0;
    }
    this.wake();
  }

  /** Something changed (for example a cooldown was set): look again soon. */
  wake(): void {
    if (this.pumpPending || this.closed) return;
    this.pumpPending = true;
    queueMicrotask(() => this.pump());
  }

  /** Re-checks a blocked key after its limits changed (a cooldown, learned limits, more calls allowed at once). */
  unblock(key: string): void {
    const queue = this.queues.get(key);
    if (queue) {
      queue.blockedUntil = 0;
      queue.waitingForSlot = false;
    }
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.stopListening?.();
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private queueFor(key: string): KeyQueue {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = {
        key,
        queue: new FairQueue(this.policy.weightOf, (task) => this.dropped(task)),
        blockedUntil: 0,
        waitingForSlot: false,
      };
      this.queues.set(key, queue);
    }
    return queue;
  }

  private pump(): void {
    this.pumpPending = false;
    if (this.closed) return;
    const now = this.clock.now();
    this.releaseDue(now);
    this.nowForOpen = now;
    while (this.running < this.concurrency) {
      const picked = this.pickQueue(now);
      if (!picked) break;
      const { queue, task } = picked;
      if (task.deadlineAt <= now) {
        this.take(queue, task);
        this.hooks.reject(
          task,
          new FanoutError('deadline_exceeded', `task ${task.id} passed its deadline while waiting`),
        );
        continue;
      }
      if (!this.chargeTenant(task, now)) continue;
      let permit;
      try {
        permit = this.limiter.reserve(queue.key, task.cost, now);
      } catch (error) {
        this.refundTenant(task, now);
        this.take(queue, task);
        this.hooks.reject(task, asFanoutError(error));
        continue;
      }
      if (permit.granted) {
        this.take(queue, task);
        this.running += 1;
        const share = this.shareOf(task.tenant);
        share.inFlight += 1;
        this.poolNow = share.start;
        share.start += 1 / this.policy.weightOf(task.tenant);
        this.hooks.start(task, permit);
        continue;
      }
      this.refundTenant(task, now);
      if (permit.reason === 'concurrency') {
        queue.waitingForSlot = true;
      } else {
        queue.blockedUntil = now + permit.waitMs;
        this.hooks.holdBack(task, queue.blockedUntil, permit.reason);
      }
    }
    this.armTimer(now);
  }

  /** An ended task left a queue without running. */
  private dropped(task: Task): void {
    const share = this.tenants.get(task.tenant);
    if (!share) return;
    share.queued -= 1;
    this.forgetIdle(task.tenant, share);
  }

  private take(queue: KeyQueue, task: Task): void {
    queue.queue.take(task);
    const share = this.tenants.get(task.tenant);
    if (share) share.queued -= 1;
  }

  /**
   * Reserves the task's cost on its tenant's own limits, when tenants have
   * some. When they are spent, the tenant waits (its head task rate-limited
   * with the ETA) and the others go on; returns false.
   */
  private chargeTenant(task: Task, now: number): boolean {
    const { limits, limiter } = this.policy;
    if (!limits || !limiter || task.tenantCharged) return true;
    if (!limiter.has(task.tenant)) limiter.define(task.tenant, { ...limits, transitMs: 0 }, now);
    let permit;
    try {
      permit = limiter.reserve(task.tenant, task.cost, now);
    } catch (error) {
      const queue = this.queues.get(task.key) as KeyQueue;
      this.take(queue, task);
      this.hooks.reject(task, asFanoutError(error));
      return false;
    }
    if (permit.granted) {
      task.tenantReservation = permit;
      return true;
    }
    const share = this.shareOf(task.tenant);
    share.blockedUntil = now + permit.waitMs;
    this.hooks.holdBack(task, share.blockedUntil, permit.reason);
    return false;
  }

  /** Gives back a tenant permit taken for a call that did not start. */
  private refundTenant(task: Task, now: number): void {
    if (!task.tenantReservation) return;
    this.policy.limiter?.settle(task.tenantReservation, now, ZERO_COST);
    task.tenantReservation = undefined;
  }

  /** Retry waits that are over go back to their queues. */
  private releaseDue(now: number): void {
    for (let task = this.delayed.peek(); task && task.readyAt <= now; task = this.delayed.peek()) {
      this.delayed.pop();
      if (isTerminal(task.state)) continue;
      this.hooks.requeue(task);
      this.push(task);
    }
  }

  /**
   * The ready key whose next task (by fair share among its tenants) goes
   * first: the task of the tenant furthest behind in the pool, then the most
   * urgent (priority, submission). Ended tasks are dropped on the way.
   */
  private pickQueue(now: number): { queue: KeyQueue; task: Task } | undefined {
    let best: KeyQueue | undefined;
    let bestHead: Task | undefined;
    let bestStart = 0;
    for (const queue of this.active) {
      if (queue.queue.size === 0) {
        this.active.delete(queue);
        continue;
      }
      if (queue.waitingForSlot || queue.blockedUntil > now) continue;
      const head = queue.queue.peek(this.isOpen);
      if (!head) {
        if (queue.queue.size === 0) this.active.delete(queue);
        continue;
      }
      const start = this.tenants.get(head.tenant)?.start ?? this.poolNow;
      if (!bestHead || start < bestStart || (start === bestStart && runsBefore(head, bestHead))) {
        best = queue;
        bestHead = head;
        bestStart = start;
      }
    }
    return best && bestHead ? { queue: best, task: bestHead } : undefined;
  }

  /** One timer, for the earliest moment a blocked key or a retry wait is ready. */
  private armTimer(now: number): void {
    let earliest = this.delayed.peek()?.readyAt ?? Number.POSITIVE_INFINITY;
    for (const queue of this.active) {
      if (queue.blockedUntil > now && queue.blockedUntil < earliest && queue.queue.size > 0)
        earliest = queue.blockedUntil;
    }
    for (const share of this.tenants.values()) {
      if (share.blockedUntil > now && share.blockedUntil < earliest && share.queued > 0) earliest = share.blockedUntil;
    }
    if (earliest === this.timerAt) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = earliest;
    if (!Number.isFinite(earliest)) return;
    this.cancelTimer = this.clock.setTimer(earliest - now, () => {
      this.cancelTimer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.wake();
    });
  }
}
