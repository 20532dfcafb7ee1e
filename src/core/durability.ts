import type { Clock } from '../contracts/clock.js';
import { asFanoutError, FanoutError, type ErrorCode } from '../contracts/errors.js';
import type { TaskStore } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import { TaskJournal } from './journal.js';
import type { Cost } from '../contracts/limiter.js';
import type { TaskRow } from '../contracts/task-store.js';
import type { TaskRequest } from '../contracts/types.js';
import type { ModelRegistry, ResolvedModel } from './models.js';
import type { TaskBoard } from './task-board.js';
import { Task, type TaskChanges } from './task.js';

/** What putting stored tasks back asks of the engine. */
export interface RecoveryHost {
  board: TaskBoard;
  models: ModelRegistry;
  journal?: TaskChanges;
  costOf(model: ResolvedModel, request: TaskRequest): Cost;
  /** Queues a task for a permit (or fails it when it can never fit). */
  admit(task: Task, now: number): void;
  /** Holds a task, rate-limited, until its `readyAt`. */
  delay(task: Task): void;
}

/**
 * Puts back in the queues the tasks an earlier run left in the store, with
 * their ids, submission order, attempts, time split and retry waits. A task
 * whose model is no longer configured fails with the reason. Returns the
 * next free submission number.
 */
export function restoreTasks(rows: readonly TaskRow[], host: RecoveryHost, now: number, nextSeq: number): number {
  for (const row of rows) {
    const task = Task.fromRow(row, host.journal);
    nextSeq = Math.max(nextSeq, row.seq + 1);
    host.board.add(task);
    try {
      const resolved = host.models.resolve(row.request.model);
      task.resolve(resolved, host.costOf(resolved, row.request));
    } catch (error) {
      host.board.fail(task, asFanoutError(error));
      continue;
    }
    if (row.state === 'rate_limited' && row.readyAt > now) {
      task.moveTo('queued', now);
      task.holdUntil(row.readyAt, now);
      host.delay(task);
    } else {
      host.admit(task, now);
    }
  }
  return nextSeq;
}

/** How the journal's troubles reach the engine. */
export interface JournalHooks {
  /** Tells a store failure or conflict as an event. */
  report(type: 'store-error' | 'store-conflict', error: { code: ErrorCode; message: string }): void;
  /** Fails a task that has not ended. */
  fail(task: Task, error: FanoutError): void;
}

/**
 * A journal on `store` whose failures are told as events. A task the store
 * cannot hold (its request or result cannot be serialised) fails on its own;
 * every other task's writes go on.
 */
export function openJournal(store: TaskStore, clock: Clock, hooks: JournalHooks): TaskJournal {
  return new TaskJournal({
    store,
    clock,
    onError: (error) => hooks.report('store-error', error),
    onConflict: (outcome) => {
      const ids = [...outcome.ended, ...outcome.leased].join(', ');
      hooks.report('store-conflict', {
        code: 'illegal_transition',
        message: `the store kept its own record of ${ids}`,
      });
    },
    onUnwritable: (tasks) => {
      for (const task of tasks) {
        const message = `task ${task.id} could not be stored (its request or result cannot be serialised) and has failed`;
        hooks.report('store-error', { code: 'invalid_request', message });
        const reason = `task ${task.id} could not be stored: its request cannot be serialised`;
        if (!isTerminal(task.state)) hooks.fail(task, new FanoutError('invalid_request', reason));
      }
    },
  });
}
