import { ProviderError, type ErrorCode, type FanoutError } from '../contracts/errors.js';
import type { TaskState } from '../contracts/task-state.js';
import type { ModelResult, TokenLogprob, ToolCallDelta } from '../contracts/types.js';

/** What an event says of an error: never the prompt or a key. */
export interface EventError {
  code: ErrorCode;
  message: string;
  status?: number;
}

/** An error as events tell it: its code, message and HTTP status. */
export function errorSummary(error: FanoutError): EventError {
  const summary: EventError = { code: error.code, message: error.message };
  if (error instanceof ProviderError && error.status !== undefined) summary.status = error.status;
  return summary;
}

/** What every event of one task carries. */
export interface TaskEventBase {
  /** Engine clock time (epoch ms). */
  at: number;
  taskId: string;
  label?: string;
  /** The limit key the task is charged to. */
  key: string;
  /** The task's state after the event. */
  state: TaskState;
}

/** One thing that happened to a task. */
export type TaskEvent =
  | (TaskEventBase & { type: 'task-queued' })
  /** Held back by a limit (a dimension, `cooldown` or `concurrency`) until about `eta`. */
  | (TaskEventBase & { type: 'task-rate-limited'; eta: number; reason: string })
  | (TaskEventBase & { type: 'task-started'; attempt: number })
  /** Streamed text of the attempt in progress. */
  | (TaskEventBase & {
      type: 'task-delta';
      attempt: number;
      /** A piece of the answer's text ('' when the event tells another piece). */
      delta: string;
      /** A piece of a tool call. */
      toolCall?: ToolCallDelta;
      /** A piece of the model's reasoning text. */
      reasoning?: string;
      /** The log probabilities of the text's tokens, when the request asked for them. */
      logprobs?: TokenLogprob[];
    })
  | (TaskEventBase & { type: 'attempt-failed'; attempt: number; error: EventError })
  /** The attempt failed and another follows at `eta`, `waitMs` from now. */
  | (TaskEventBase & { type: 'task-retrying'; attempt: number; eta: number; waitMs: number; reason: string })
  | TaskEndEvent;

/** The last event of a task: it completed, failed or was cancelled. */
export type TaskEndEvent =
  | (TaskEventBase & { type: 'task-completed'; result: ModelResult })
  | (TaskEventBase & { type: 'task-failed'; error: EventError })
  | (TaskEventBase & { type: 'task-cancelled'; error: EventError });

/** One thing that happened in the engine: a task's event, or one of the engine's own. */
export type EngineEvent =
  | TaskEvent
  /** Calls on `key` wait `waitMs` for a limit (`reason`: a dimension, `cooldown` or `concurrency`). */
  | { type: 'limit-wait'; at: number; key: string; waitMs: number; reason: string }
  | { type: 'cache-error'; at: number; error: EventError }
  | { type: 'store-error'; at: number; error: EventError }
  | { type: 'store-conflict'; at: number; error: EventError }
  /** `key`, a model, is used without limits; `suggestion` is the configured model a typo most likely meant. */
  | { type: 'model-unconfigured'; at: number; key: string; suggestion?: string; learnsLimits: boolean };

export type EngineEventType = EngineEvent['type'];

/** The event of one type, with the fields that type carries. */
export type EventOf<T extends EngineEventType> = Extract<EngineEvent, { type: T }>;

/** True for the last event of a task. */
export function isEnd(event: EngineEvent): event is TaskEndEvent {
  return event.type === 'task-completed' || event.type === 'task-failed' || event.type === 'task-cancelled';
}

export type EventListener = (event: EngineEvent) => void;

export interface EventStreamOptions {
  /** Only events of these tasks. */
  taskIds?: readonly string[];
  /** Only these types. */
  types?: readonly EngineEventType[];
  /** Ends the stream after the first event for which this is true (that event included). */
  until?: (event: EngineEvent) => boolean;
  /** Ends the stream when aborted. */
  signal?: AbortSignal;
}

/**
 * Listeners and async iterators over engine events. Emitting costs one
 * comparison when nobody listens, so an engine with no subscribers pays
 * nothing per task.
 */
export class EventHub {
  private readonly byType = new Map<EngineEventType, Set<EventListener>>();
  private readonly any = new Set<EventListener>();
  /** Listeners of one task's events, by task id: an event reaches only those of its own task. */
  private readonly byTask = new Map<string, Set<EventListener>>();
  private readonly enders = new Set<() => void>();
  private listenerCount = 0;

  get active(): boolean {
    return this.listenerCount > 0;
  }

  wants(type: EngineEventType): boolean {
    return this.any.size > 0 || this.byTask.size > 0 || (this.byType.get(type)?.size ?? 0) > 0;
  }

  on<T extends EngineEventType>(type: T | '*', listener: (event: EventOf<T>) => void): () => void {
    return this.add(type === '*' ? this.any : this.setFor(type), listener as EventListener, () => undefined);
  }

  /**
   * Listens to one task's events only. However many tasks are followed this
   * way (a socket per task, thousands of sockets), an event costs one map
   * look-up plus its own task's listeners, not a call to every listener.
   */
  onTask(taskId: string, listener: (event: TaskEvent) => void): () => void {
    let set = this.byTask.get(taskId);
    if (!set) {
      set = new Set();
      this.byTask.set(taskId, set);
    }
    const own = set;
    return this.add(own, listener as EventListener, () => {
      if (own.size === 0 && this.byTask.get(taskId) === own) this.byTask.delete(taskId);
    });
  }

  /** Adds `listener` to `set`; returns the removal, which runs `emptied` after it and is safe to call twice. */
  private add(set: Set<EventListener>, listener: EventListener, emptied: () => void): () => void {
    if (set.has(listener)) return () => undefined;
    set.add(listener);
    this.listenerCount += 1;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      if (set.delete(listener)) this.listenerCount -= 1;
      emptied();
    };
  }

  emit(event: EngineEvent): void {
    const typed = this.byType.get(event.type);
    if (typed) for (const listener of typed) listener(event);
    for (const listener of this.any) listener(event);
    if (this.byTask.size > 0 && 'taskId' in event) {
      const own = this.byTask.get(event.taskId);
      if (own) for (const listener of [...own]) listener(event);
    }
  }

  /** An async iterator of events from now on. It ends on `until`, on abort, or when the hub closes. */
  stream(options: EventStreamOptions = {}): AsyncIterableIterator<EngineEvent> {
    const buffer: EngineEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const types = options.types ? new Set(options.types) : undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      this.enders.delete(finish);
      options.signal?.removeEventListener('abort', finish);
      wake?.();
    };
    const listener = (event: EngineEvent): void => {
      if (done) return;
      if (types && !types.has(event.type)) return;
      buffer.push(event);
      if (options.until?.(event)) finish();
      wake?.();
    };
    // A stream of some tasks listens to those tasks only, never to every event.
    const unsubscribes = options.taskIds
      ? [...new Set(options.taskIds)].map((id) => this.onTask(id, listener))
      : [this.on('*', listener)];
    this.enders.add(finish);
    if (options.signal?.aborted) finish();
    else options.signal?.addEventListener('abort', finish, { once: true });

    const iterator: AsyncIterableIterator<EngineEvent> = {
      next: async (): Promise<IteratorResult<EngineEvent>> => {
        while (buffer.length === 0 && !done) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const event = buffer.shift();
        return event ? { value: event, done: false } : { value: undefined, done: true };
      },
      return: async (): Promise<IteratorResult<EngineEvent>> => {
        finish();
        buffer.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** An iterator that has already ended: the events of something that is over. */
  static ended(): AsyncIterableIterator<EngineEvent> {
    const iterator: AsyncIterableIterator<EngineEvent> = {
      next: async () => ({ value: undefined, done: true }),
      return: async () => ({ value: undefined, done: true }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Ends every open stream and drops every listener. */
  close(): void {
    for (const end of [...this.enders]) end();
    this.byType.clear();
    this.any.clear();
    this.byTask.clear();
    this.listenerCount = 0;
  }

  private setFor(type: EngineEventType): Set<EventListener> {
    let set = this.byType.get(type);
    if (!set) {
      set = new Set();
      this.byType.set(type, set);
    }
    return set;
  }
}
