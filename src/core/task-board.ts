import type { Clock } from '../contracts/clock.js';
import type { FanoutError } from '../contracts/errors.js';
import type { WaitReason } from '../contracts/limiter.js';
import { isTerminal } from '../contracts/task-state.js';
import type { ModelResult } from '../contracts/types.js';
import { errorSummary, type EventHub, type EventOf, type TaskEvent, type TaskEventBase } from './events.js';
import type { Task } from './task.js';

/** What the board asks of the engine. */
export interface TaskBoardHooks {
  /** A task passed its deadline. */
  deadline(task: Task): void;
  /** A task ended and every waiter has been told. */
  ended(task: Task, now: number): void;
}

/**
 * Every task the engine holds, and every move of a task between states, each
 * told as an event. Keeps the count of tasks not ended (what `idle` waits
 * for) and forgets the oldest ended tasks beyond `maxEnded`.
 */
export class TaskBoard {
  private readonly tasks = new Map<string, Task>();
  /** Ids of ended tasks, oldest first, from `endedHead` on. */
  private ended: string[] = [];
  private endedHead = 0;
  private pending = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly clock: Clock,
    private readonly hub: EventHub,
    private readonly maxEnded: number,
    private readonly hooks: TaskBoardHooks,
  ) {}

  get(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  has(id: string): boolean {
    return this.tasks.has(id);
  }

  values(): IterableIterator<Task> {
    return this.tasks.values();
  }

  /** Holds a new (or recovered) task, which counts as pending until it ends. */
  add(task: Task): void {
    this.tasks.set(task.id, task);
    this.pending += 1;
  }

  /** Tasks that have not ended. */
  get pendingCount(): number {
    return this.pending;
  }

  /** How many tasks not ended are in each state. */
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

  /** Calls `callback` once the task has ended (at once if it has). */
  whenEnded(task: Task, callback: (task: Task) => void): void {
    if (isTerminal(task.state)) callback(task);
    else (task.waiters ??= []).push(callback);
  }

  /** A submitted task is queued, and its deadline starts. */
  queue(task: Task, now: number): void {
    task.moveTo('queued', now);
    this.emit('task-queued', task, now, {});
    if (Number.isFinite(task.deadlineAt)) {
      task.cancelDeadline = this.clock.setTimer(task.deadlineAt - now, () => this.hooks.deadline(task));
    }
  }

  /** A task whose retry wait is over goes back in its queue. */
  requeue(task: Task): void {
    const now = this.clock.now();
    task.moveTo('queued', now);
    if (this.hub.active) this.emit('task-queued', task, now, {});
  }

  /** The task at the head of its key waits for a permit until `eta`. */
  holdBack(task: Task, eta: number, reason: WaitReason): void {
    const now = this.clock.now();
    const entering = task.holdUntil(eta, now);
    if (!this.hub.active) return;
    if (entering) this.emit('task-rate-limited', task, now, { eta, reason });
    this.hub.emit({ type: 'limit-wait', at: now, key: task.key, waitMs: eta - now, reason });
  }

  /** A failed attempt is retried at `readyAt`. */
  retry(task: Task, attempt: number, readyAt: number, now: number): void {
    task.retryAt(readyAt, now);
    if (this.hub.active)
      this.emit('task-retrying', task, now, { attempt, eta: readyAt, waitMs: readyAt - now, reason: 'retry' });
  }

  complete(task: Task, result: ModelResult, now: number): void {
    this.end(task, 'completed', now, { result });
  }

  fail(task: Task, error: FanoutError): void {
    this.end(task, 'failed', this.clock.now(), { error });
  }

  /** Ends a task: tells its event and its waiters, then forgets the oldest ended task beyond the limit. */
  end(
    task: Task,
    state: 'completed' | 'failed' | 'cancelled',
    now: number,
    outcome: { result?: ModelResult; error?: FanoutError },
  ): void {
    const waiters = task.end(state, now, outcome);
    if (this.hub.active) {
      if (outcome.result) this.emit('task-completed', task, now, { result: outcome.result });
      else if (outcome.error)
        this.emit(state === 'failed' ? 'task-failed' : 'task-cancelled', task, now, {
          error: errorSummary(outcome.error),
        });
    }
    if (waiters) for (const waiter of waiters) waiter(task);
    task.observer?.taskEnded(task, task.slot);
    task.observer = undefined;
    this.hooks.ended(task, now);
    this.forgetOldEnded(task.id);
    this.pending -= 1;
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Tells one of a task's events, if anyone listens for its type. */
  emit<T extends TaskEvent['type']>(
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

  private forgetOldEnded(id: string): void {
    this.ended.push(id);
    if (this.ended.length - this.endedHead <= this.maxEnded) return;
    this.tasks.delete(this.ended[this.endedHead] as string);
    this.endedHead += 1;
    if (this.endedHead > 4096 && this.endedHead * 2 > this.ended.length) {
      this.ended = this.ended.slice(this.endedHead);
      this.endedHead = 0;
    }
  }
}
