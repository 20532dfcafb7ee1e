import type { ErrorCode } from '../contracts/errors.js';
import type { TaskState } from '../contracts/task-state.js';
import type { ModelResult } from '../contracts/types.js';

export type EngineEventType =
  | 'task-queued'
  | 'task-rate-limited'
  | 'task-started'
  | 'task-delta'
  | 'attempt-failed'
  | 'task-retrying'
  | 'task-completed'
  | 'task-failed'
  | 'task-cancelled'
  | 'limit-wait'
  | 'cache-error'
  | 'store-error'
  | 'store-conflict'
  | 'model-unconfigured';

/** One thing that happened in the engine. Fields beyond `type` and `at` depend on the type. */
export interface EngineEvent {
  type: EngineEventType;
  /** Engine clock time (epoch ms). */
  at: number;
  taskId?: string;
  label?: string;
  /** The limit key, for `limit-wait` and task events. */
  key?: string;
  state?: TaskState;
  attempt?: number;
  /** `task-rate-limited`, `task-retrying`: when the task expects to go again (epoch ms). */
  eta?: number;
  /** `limit-wait`, `task-retrying`: milliseconds of the wait. */
  waitMs?: number;
  /** `limit-wait`, `task-rate-limited`: what is binding (a limit dimension, `cooldown`, `retry`). */
  reason?: string;
  /** `task-delta`: streamed text. */
  delta?: string;
  /** `attempt-failed`, `task-failed`, `task-cancelled`. */
  error?: { code: ErrorCode; message: string; status?: number };
  /** `task-completed`. */
  result?: ModelResult;
  /** `model-unconfigured` (the model in `key`): the configured model a typo most likely meant. */
  suggestion?: string;
  /** `model-unconfigured`: true when the provider reports its limits, so fanout learns them from its answers. */
  learnsLimits?: boolean;
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

  on(type: EngineEventType | '*', listener: EventListener): () => void {
    return this.add(type === '*' ? this.any : this.setFor(type), listener, () => undefined);
  }

  /**
   * Listens to one task's events only. However many tasks are followed this
   * way (a socket per task, thousands of sockets), an event costs one map
   * look-up plus its own task's listeners, not a call to every listener.
   */
  onTask(taskId: string, listener: EventListener): () => void {
    let set = this.byTask.get(taskId);
    if (!set) {
      set = new Set();
      this.byTask.set(taskId, set);
    }
    const own = set;
    return this.add(own, listener, () => {
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
    if (event.taskId !== undefined && this.byTask.size > 0) {
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
