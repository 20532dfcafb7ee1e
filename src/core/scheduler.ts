import type { Limiter, Reservation, WaitReason } from '../limits/limiter.js';
import type { Clock } from './clock.js';
import { asFanoutError, FanoutError } from './errors.js';
import { Heap } from './heap.js';
import { isTerminal } from './task-state.js';
import { TaskQueue } from './task-queue.js';
import { runsBefore, type Task } from './task.js';

/** What the scheduler asks of the engine. */
export interface SchedulerHooks {
  /** A permit was granted: run the task's next attempt now. */
  start(task: Task, reservation: Reservation): void;
  /** The task at the head of its key must wait for a permit until `eta`. */
  holdBack(task: Task, eta: number, reason: WaitReason): void;
  /** A retry wait is over: the task goes back to its key's queue. */
  requeue(task: Task): void;
  /** The task can never run (too large for a limit) or ran out of time. */
  reject(task: Task, error: FanoutError): void;
}

interface KeyQueue {
  key: string;
  queue: TaskQueue;
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
 */
export class Scheduler {
  private readonly queues = new Map<string, KeyQueue>();
  private readonly active = new Set<KeyQueue>();
  private readonly delayed = new Heap<Task>((a, b) => a.readyAt < b.readyAt || (a.readyAt === b.readyAt && runsBefore(a, b)));
  private pumpPending = false;
  private cancelTimer?: () => void;
  private timerAt = Number.POSITIVE_INFINITY;
  private running = 0;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly limiter: Limiter,
    private readonly hooks: SchedulerHooks,
    private readonly concurrency: number,
  ) {}

  /** Calls in flight across the engine. */
  get inFlight(): number {
    return this.running;
  }

  /** Adds a queued task to its key's queue. */
  enqueue(task: Task): void {
    const queue = this.queueFor(task.key);
    queue.queue.push(task);
    this.active.add(queue);
    this.wake();
  }

  /** Holds a task (already rate_limited) until its `readyAt`. */
  delay(task: Task): void {
    this.delayed.push(task);
    this.wake();
  }

  /** A call on `key` ended: its slot is free, and a refund may have made room. */
  released(key: string): void {
    this.running -= 1;
    const queue = this.queues.get(key);
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

  /** Re-checks the blocked keys after their limits changed (a cooldown, learned limits). */
  unblock(key: string): void {
    const queue = this.queues.get(key);
    if (queue) queue.blockedUntil = 0;
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private queueFor(key: string): KeyQueue {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { key, queue: new TaskQueue(), blockedUntil: 0, waitingForSlot: false };
      this.queues.set(key, queue);
    }
    return queue;
  }

  private pump(): void {
    this.pumpPending = false;
    if (this.closed) return;
    const now = this.clock.now();
    this.releaseDue(now);
    while (this.running < this.concurrency) {
      const queue = this.pickQueue(now);
      if (!queue) break;
      const task = queue.queue.peek() as Task;
      if (task.deadlineAt <= now) {
        queue.queue.pop();
        this.hooks.reject(task, new FanoutError('deadline_exceeded', `task ${task.id} passed its deadline while waiting`));
        continue;
      }
      let permit;
      try {
        permit = this.limiter.reserve(queue.key, task.cost, now);
      } catch (error) {
        queue.queue.pop();
        this.hooks.reject(task, asFanoutError(error));
        continue;
      }
      if (permit.granted) {
        queue.queue.pop();
        this.running += 1;
        this.hooks.start(task, permit);
      } else if (permit.reason === 'concurrency') {
        queue.waitingForSlot = true;
      } else {
        queue.blockedUntil = now + permit.waitMs;
        this.hooks.holdBack(task, queue.blockedUntil, permit.reason);
      }
    }
    this.armTimer(now);
  }

  /** Retry waits that are over go back to their queues. */
  private releaseDue(now: number): void {
    for (let task = this.delayed.peek(); task && task.readyAt <= now; task = this.delayed.peek()) {
      this.delayed.pop();
      if (isTerminal(task.state)) continue;
      this.hooks.requeue(task);
      const queue = this.queueFor(task.key);
      queue.queue.push(task);
      this.active.add(queue);
    }
  }

  /** The ready key whose head is most urgent, dropping cancelled heads on the way. */
  private pickQueue(now: number): KeyQueue | undefined {
    let best: KeyQueue | undefined;
    let bestHead: Task | undefined;
    for (const queue of this.active) {
      let head = queue.queue.peek();
      while (head && isTerminal(head.state)) {
        queue.queue.pop();
        head = queue.queue.peek();
      }
      if (!head) {
        this.active.delete(queue);
        continue;
      }
      if (queue.waitingForSlot || queue.blockedUntil > now) continue;
      if (!bestHead || runsBefore(head, bestHead)) {
        best = queue;
        bestHead = head;
      }
    }
    return best;
  }

  /** One timer, for the earliest moment a blocked key or a retry wait is ready. */
  private armTimer(now: number): void {
    let earliest = this.delayed.peek()?.readyAt ?? Number.POSITIVE_INFINITY;
    for (const queue of this.active) {
      if (queue.blockedUntil > now && queue.blockedUntil < earliest && queue.queue.size > 0) earliest = queue.blockedUntil;
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
