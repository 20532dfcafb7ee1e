import { FanoutError } from '../contracts/errors.js';
import type { TaskRow } from '../contracts/task-store.js';
import { isTerminal } from '../contracts/task-state.js';
import type { ModelResult } from '../contracts/types.js';
import type { TaskHandle } from './engine-options.js';
import { EventHub, isEnd, type EngineEvent, type EventStreamOptions } from './events.js';
import { statusFromRow, type Task } from './task.js';

/** What a handle asks of the engine that holds its task. */
export interface HandleHost {
  result(id: string): Promise<ModelResult>;
  cancel(id: string): boolean;
  now(): number;
  events(options: EventStreamOptions): AsyncIterableIterator<EngineEvent>;
}

/** The handle of a task this engine holds. */
export function taskHandle(task: Task, host: HandleHost): TaskHandle {
  return {
    id: task.id,
    result: () => host.result(task.id),
    status: () => task.status(host.now()),
    cancel: () => host.cancel(task.id),
    // A task that has ended has no events left: its iterator ends at once rather than waiting for ever.
    events: () => (isTerminal(task.state) ? EventHub.ended() : host.events({ taskIds: [task.id], until: isEnd })),
  };
}

/** The handle of a task that ended before this engine's time, as its store kept it. */
export function storedHandle(row: TaskRow): TaskHandle {
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
