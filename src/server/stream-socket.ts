import type { WebSocket } from 'ws';
import type { TaskService } from '../core/task-service.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { isEnd, type TaskEvent } from '../core/events.js';
import { taskMessage } from './task-messages.js';
import { assertJsonBounds } from '../core/json-bounds.js';
import { isTerminal } from '../contracts/task-state.js';
import type { TaskStatus } from '../core/task.js';
import type { TaskRequest } from '../contracts/types.js';
import type { BatchRegistry } from './batches.js';
import type { DashboardFeed } from './dashboard/feed.js';
import type { RunChange, RunRegistry, ServerRun } from './runs.js';

export interface StreamSocketOptions {
  /** Where the socket's tasks run: the engine, or the queue of a Redis. */
  tasks: TaskService;
  batches: BatchRegistry;
  runs: RunRegistry;
  tenant: string;
  /** Most tasks, batches and runs one socket may follow at once (a batch or a run counts once). */
  maxSubscriptions: number;
  /** Aborts when the server starts to shut down: the socket closes (1001) once it follows nothing. */
  stopping?: AbortSignal;
  /** Aborts when the shutdown's grace period is over: the socket closes (1001) at once. */
  ending?: AbortSignal;
  /** The dashboard's figures, followed with `{ type: 'subscribe', dashboard: true }`. */
  dashboard?: DashboardFeed;
}

type ClientMessage =
  | { type: 'submit'; request: TaskRequest }
  | { type: 'subscribe'; task?: string; batch?: string; run?: string; dashboard?: boolean }
  | { type: 'unsubscribe'; task?: string; batch?: string; run?: string; dashboard?: boolean };

/**
 * One WebSocket at `/v1/stream`. A client submits tasks or subscribes to its
 * own tasks, batches and pipeline runs, and receives `acknowledged`, then:
 * - a task: `state` changes, stream `delta`s, then `response` or `error`;
 * - a batch: `response` or `error` for each line as its task ends (with `batch`,
 *   `line` and `custom_id`; lines that were invalid at once come first), then a
 *   `response` with the batch's counts;
 * - a run: `state` as each step ends, then `response` with the run's steps,
 *   outputs and timeline, or `error`;
 * - the dashboard: a `dashboard` message at once and every second, with the
 *   tenant's figures (limits, per-second counts, latency, tasks, batches, runs).
 * A bad message gets an `error` message; the socket stays open. Another
 * tenant's task, batch or run is as unknown as one that does not exist.
 */
export function serveStreamSocket(socket: WebSocket, options: StreamSocketOptions): void {
  const session = new StreamSession(socket, options);
  session.watchShutdown();
  socket.on('close', () => session.closed());
  socket.on('message', (data, isBinary) => session.received(data.toString(), isBinary));
}

/** What one socket follows, and how it answers. */
class StreamSession {
  /** Each followed task and the function that stops its events. */
  private readonly following = new Map<string, () => void>();
  /** Each followed batch's subscription; a batch followed again gets a new one, and the old one goes quiet. */
  private readonly batches = new Map<string, object>();
  private readonly runs = new Map<string, () => void>();
  private stopDashboard: (() => void) | undefined;
  private readonly engine: TaskService;
  private readonly tenant: string;

  constructor(
    private readonly socket: WebSocket,
    private readonly options: StreamSocketOptions,
  ) {
    this.engine = options.tasks;
    this.tenant = options.tenant;
  }

  private send(message: Record<string, unknown>): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(JSON.stringify(message));
    // While the server stops, a socket closes as soon as what it follows has ended.
    if ((message.type === 'response' || message.type === 'error') && this.options.stopping?.aborted)
      queueMicrotask(this.closeIfIdle);
  }

  private fail = (error: unknown, task?: string): void => {
    const e = asFanoutError(error, 'invalid_request');
    this.send({ type: 'error', ...(task ? { task } : {}), error: { code: e.code, message: e.message } });
  };

  /** The last message about a task: its response, or the error it ended with. */
  private ending(
    id: string,
    status: TaskStatus | undefined,
    about: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return status?.state === 'completed'
      ? { type: 'response', ...about, task: id, result: status.result, usage: status.usage, timing: status.timing }
      : { type: 'error', ...about, task: id, state: status?.state, error: status?.error };
  }

  private unfollow(id: string): void {
    this.following.get(id)?.();
    this.following.delete(id);
  }

  /** Sends the task's last message; `known` is its status when this process does not hold it (read from the store). */
  private finish(id: string, known?: TaskStatus): void {
    this.unfollow(id);
    this.send(this.ending(id, this.engine.status(id) ?? known));
  }

  /** Only the events of followed tasks reach this socket: each task is listened to on its own. */
  private onEvent = (event: TaskEvent): void => {
    if (isEnd(event)) this.finish(event.taskId);
    else this.send(taskMessage(event));
  };

  private checkRoom(): void {
    const max = this.options.maxSubscriptions;
    if (this.following.size + this.batches.size + this.runs.size >= max) {
      throw new FanoutError(
        'invalid_request',
        `this socket already follows ${max} tasks, batches and runs; unsubscribe or open another`,
      );
    }
  }

  /** Follows a task this process may not hold: read from the store first. */
  private async followKept(id: string): Promise<void> {
    this.follow(id, this.engine.status(id) ?? (await this.engine.find(id)));
  }

  private follow(id: string, status = this.engine.status(id)): void {
    if (!status || status.tenant !== this.tenant) throw new FanoutError('unknown_task', `no task with id ${id}`);
    this.checkRoom();
    this.send({ type: 'acknowledged', task: id, state: status.state });
    if (isTerminal(status.state)) this.finish(id, status);
    else if (!this.following.has(id)) this.following.set(id, this.engine.onTask(id, this.onEvent));
  }

  private async followBatch(id: string): Promise<void> {
    const registry = this.options.batches;
    const batch = await registry.get(this.tenant, id);
    if (!batch) throw new FanoutError('unknown_task', `no batch with id ${id}`);
    if (this.batches.has(id)) return;
    this.checkRoom();
    const subscription = {};
    this.batches.set(id, subscription);
    const live = (): boolean => this.batches.get(id) === subscription;
    this.send({ type: 'acknowledged', batch: id, ...registry.summary(batch) });
    const ends = batch.entries.map(async (entry) => {
      const about = { batch: id, line: entry.line, custom_id: entry.customId };
      if (!entry.taskId) {
        if (live()) this.send({ type: 'error', ...about, error: entry.error });
        return;
      }
      const status = await registry.endOf(entry);
      if (live()) this.send(this.ending(entry.taskId, status, about));
    });
    void Promise.all(ends).then(() => {
      if (!live()) return;
      this.batches.delete(id);
      const { counts, lines } = registry.summary(batch);
      this.send({ type: 'response', batch: id, lines, counts });
    });
  }

  private async followRun(id: string): Promise<void> {
    const registry = this.options.runs;
    const run = await registry.get(this.tenant, id);
    if (!run) throw new FanoutError('unknown_task', `no run with id ${id}`);
    if (this.runs.has(id)) return;
    this.checkRoom();
    this.send({ type: 'acknowledged', run: id, state: run.state, steps: registry.stepStates(run) });
    const ended = (final: ServerRun): void => {
      this.runs.delete(id);
      if (final.state === 'completed') this.send({ type: 'response', ...registry.view(final), run: id });
      else
        this.send({
          type: 'error',
          run: id,
          state: final.state,
          error: final.error ?? { code: 'step_failed', message: 'a step failed; see steps' },
          steps: registry.view(final).steps,
        });
    };
    if (run.state !== 'running') return ended(run);
    const stop = registry.watch(run, (change: RunChange): void => {
      if (change.type === 'step') {
        const { name, state, error } = change.step;
        this.send({ type: 'state', run: id, step: name, state, ...(error ? { error } : {}) });
      } else {
        stop();
        ended(change.run);
      }
    });
    this.runs.set(id, stop);
  }

  private goodbye = (): void => {
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(1001, 'server shutting down');
  };

  private closeIfIdle = (): void => {
    if (this.following.size + this.batches.size + this.runs.size === 0) this.goodbye();
  };

  /** A shutdown closes the socket once it follows nothing, and at once when the grace period is over. */
  watchShutdown(): void {
    this.options.stopping?.addEventListener('abort', this.closeIfIdle, { once: true });
    this.options.ending?.addEventListener('abort', this.goodbye, { once: true });
    if (this.options.stopping?.aborted) this.closeIfIdle();
  }

  closed(): void {
    this.options.stopping?.removeEventListener('abort', this.closeIfIdle);
    this.options.ending?.removeEventListener('abort', this.goodbye);
    for (const stop of this.following.values()) stop();
    this.following.clear();
    this.batches.clear();
    for (const forget of this.runs.values()) forget();
    this.runs.clear();
    this.stopDashboard?.();
  }

  received(text: string, isBinary: boolean): void {
    let message: ClientMessage;
    try {
      if (isBinary) throw new FanoutError('invalid_request', 'expected a text frame with a JSON message');
      message = JSON.parse(text) as ClientMessage;
      if (typeof message !== 'object' || message === null)
        throw new FanoutError('invalid_request', 'expected a JSON object');
      assertJsonBounds(message, '(root)');
    } catch (error) {
      this.fail(
        error instanceof SyntaxError ? new FanoutError('invalid_request', `not JSON (${error.message})`) : error,
      );
      return;
    }
    try {
      this.act(message);
    } catch (error) {
      this.fail(error);
    }
  }

  private act(message: ClientMessage): void {
    if (message.type === 'submit') {
      const request = message.request;
      if (typeof request !== 'object' || request === null)
        throw new FanoutError('invalid_request', 'request: expected an object');
      this.follow(this.engine.submit({ ...request, tenant: this.tenant }).id);
    } else if (message.type === 'subscribe' && typeof message.task === 'string') {
      // Answered in order when this process holds the task; read from the store first when it does not.
      if (this.engine.status(message.task)) this.follow(message.task);
      else this.followKept(message.task).catch(this.fail);
    } else if (message.type === 'subscribe' && typeof message.batch === 'string') {
      this.followBatch(message.batch).catch(this.fail);
    } else if (message.type === 'subscribe' && typeof message.run === 'string') {
      this.followRun(message.run).catch(this.fail);
    } else if (message.type === 'subscribe' && message.dashboard === true && this.options.dashboard) {
      this.stopDashboard ??= this.options.dashboard.follow(this.tenant, (figures) => this.send({ ...figures }));
    } else if (message.type === 'unsubscribe' && message.dashboard === true) {
      this.stopDashboard?.();
      this.stopDashboard = undefined;
    } else if (message.type === 'unsubscribe' && typeof message.task === 'string') {
      this.unfollow(message.task);
    } else if (message.type === 'unsubscribe' && typeof message.batch === 'string') {
      this.batches.delete(message.batch);
    } else if (message.type === 'unsubscribe' && typeof message.run === 'string') {
      this.runs.get(message.run)?.();
      this.runs.delete(message.run);
    } else {
      throw new FanoutError(
        'invalid_request',
        'type: expected "submit" (with request), "subscribe" or "unsubscribe" (with task, batch, run or dashboard: true)',
      );
    }
  }
}
