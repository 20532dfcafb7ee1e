import type { WebSocket } from 'ws';
import type { FanoutEngine } from '../create-engine.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { isEnd, type TaskEvent } from '../core/events.js';
import { taskMessage } from './task-messages.js';
import { assertJsonBounds } from '../core/json-bounds.js';
import { isTerminal } from '../contracts/task-state.js';
import type { TaskStatus } from '../core/task.js';
import type { TaskRequest } from '../contracts/types.js';
import type { BatchRegistry } from './batches.js';
import type { RunChange, RunRegistry } from './runs.js';

export interface StreamSocketOptions {
  engine: FanoutEngine;
  batches: BatchRegistry;
  runs: RunRegistry;
  tenant: string;
  /** Most tasks, batches and runs one socket may follow at once (a batch or a run counts once). */
  maxSubscriptions: number;
  /** Aborts when the server starts to shut down: the socket closes (1001) once it follows nothing. */
  stopping?: AbortSignal;
  /** Aborts when the shutdown's grace period is over: the socket closes (1001) at once. */
  ending?: AbortSignal;
}

type ClientMessage =
  | { type: 'submit'; request: TaskRequest }
  | { type: 'subscribe'; task?: string; batch?: string; run?: string }
  | { type: 'unsubscribe'; task?: string; batch?: string; run?: string };

/**
 * One WebSocket at `/v1/stream`. A client submits tasks or subscribes to its
 * own tasks, batches and pipeline runs, and receives `acknowledged`, then:
 * - a task: `state` changes, stream `delta`s, then `response` or `error`;
 * - a batch: `response` or `error` for each line as its task ends (with `batch`,
 *   `line` and `custom_id`; lines that were invalid at once come first), then a
 *   `response` with the batch's counts;
 * - a run: `state` as each step ends, then `response` with the run's steps,
 *   outputs and timeline, or `error`.
 * A bad message gets an `error` message; the socket stays open. Another
 * tenant's task, batch or run is as unknown as one that does not exist.
 */
export function serveStreamSocket(socket: WebSocket, options: StreamSocketOptions): void {
  const { engine, tenant } = options;
  /** Each followed task and the function that stops its events. */
  const following = new Map<string, () => void>();
  const send = (message: Record<string, unknown>): void => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(message));
    if (message.type === 'response' || message.type === 'error') afterMessage();
  };
  const fail = (error: unknown, task?: string): void => {
    const e = asFanoutError(error, 'invalid_request');
    send({ type: 'error', ...(task ? { task } : {}), error: { code: e.code, message: e.message } });
  };
  /** The last message about a task: its response, or the error it ended with. */
  const ending = (
    id: string,
    status: TaskStatus | undefined,
    about: Record<string, unknown> = {},
  ): Record<string, unknown> =>
    status?.state === 'completed'
      ? { type: 'response', ...about, task: id, result: status.result, usage: status.usage, timing: status.timing }
      : { type: 'error', ...about, task: id, state: status?.state, error: status?.error };
  const unfollow = (id: string): void => {
    following.get(id)?.();
    following.delete(id);
  };
  const finish = (id: string): void => {
    unfollow(id);
    send(ending(id, engine.status(id)));
  };
  /** Only the events of followed tasks reach this socket: each task is listened to on its own. */
  const onEvent = (event: TaskEvent): void => {
    const id = event.taskId;
    if (isEnd(event)) finish(id);
    else send(taskMessage(event));
  };
  /** Each followed batch's subscription; a batch followed again gets a new one, and the old one goes quiet. */
  const batches = new Map<string, object>();
  const runs = new Map<string, () => void>();
  const checkRoom = (): void => {
    if (following.size + batches.size + runs.size >= options.maxSubscriptions) {
      throw new FanoutError(
        'invalid_request',
        `this socket already follows ${options.maxSubscriptions} tasks, batches and runs; unsubscribe or open another`,
      );
    }
  };
  const follow = (id: string): void => {
    const status = engine.status(id);
    if (!status || status.tenant !== tenant) throw new FanoutError('unknown_task', `no task with id ${id}`);
    checkRoom();
    send({ type: 'acknowledged', task: id, state: status.state });
    if (isTerminal(status.state)) finish(id);
    else if (!following.has(id)) following.set(id, engine.onTask(id, onEvent));
  };
  const followBatch = async (id: string): Promise<void> => {
    const batch = await options.batches.get(tenant, id);
    if (!batch) throw new FanoutError('unknown_task', `no batch with id ${id}`);
    if (batches.has(id)) return;
    checkRoom();
    const subscription = {};
    batches.set(id, subscription);
    const live = (): boolean => batches.get(id) === subscription;
    send({ type: 'acknowledged', batch: id, ...options.batches.summary(batch) });
    const ends = batch.entries.map(async (entry) => {
      const about = { batch: id, line: entry.line, custom_id: entry.customId };
      if (!entry.taskId) {
        if (live()) send({ type: 'error', ...about, error: entry.error });
        return;
      }
      const status = await options.batches.endOf(entry);
      if (live()) send(ending(entry.taskId, status, about));
    });
    void Promise.all(ends).then(() => {
      if (!live()) return;
      batches.delete(id);
      const { counts, lines } = options.batches.summary(batch);
      send({ type: 'response', batch: id, lines, counts });
    });
  };
  const followRun = async (id: string): Promise<void> => {
    const run = await options.runs.get(tenant, id);
    if (!run) throw new FanoutError('unknown_task', `no run with id ${id}`);
    if (runs.has(id)) return;
    checkRoom();
    send({ type: 'acknowledged', run: id, state: run.state, steps: options.runs.stepStates(run) });
    const ended = (): void => {
      runs.delete(id);
      if (run.state === 'completed') send({ type: 'response', ...options.runs.view(run), run: id });
      else
        send({
          type: 'error',
          run: id,
          state: run.state,
          error: run.error ?? { code: 'step_failed', message: 'a step failed; see steps' },
          steps: options.runs.view(run).steps,
        });
    };
    if (run.state !== 'running') return ended();
    const watcher = (change: RunChange): void => {
      if (change.type === 'step')
        send({
          type: 'state',
          run: id,
          step: change.step.name,
          state: change.step.state,
          ...(change.step.error ? { error: change.step.error } : {}),
        });
      else {
        run.watchers.delete(watcher);
        ended();
      }
    };
    run.watchers.add(watcher);
    runs.set(id, () => run.watchers.delete(watcher));
  };
  const idle = (): boolean => following.size + batches.size + runs.size === 0;
  const goodbye = (): void => {
    if (socket.readyState === socket.OPEN) socket.close(1001, 'server shutting down');
  };
  const closeIfIdle = (): void => {
    if (idle()) goodbye();
  };
  options.stopping?.addEventListener('abort', closeIfIdle, { once: true });
  options.ending?.addEventListener('abort', goodbye, { once: true });
  if (options.stopping?.aborted) closeIfIdle();
  // While the server stops, a socket closes as soon as what it follows has ended.
  const afterMessage = (): void => {
    if (options.stopping?.aborted) queueMicrotask(closeIfIdle);
  };
  socket.on('close', () => {
    options.stopping?.removeEventListener('abort', closeIfIdle);
    options.ending?.removeEventListener('abort', goodbye);
    for (const stop of following.values()) stop();
    following.clear();
    batches.clear();
    for (const forget of runs.values()) forget();
    runs.clear();
  });
  socket.on('message', (data, isBinary) => {
    let message: ClientMessage;
    try {
      if (isBinary) throw new FanoutError('invalid_request', 'expected a text frame with a JSON message');
      message = JSON.parse(data.toString()) as ClientMessage;
      if (typeof message !== 'object' || message === null)
        throw new FanoutError('invalid_request', 'expected a JSON object');
      assertJsonBounds(message, '(root)');
    } catch (error) {
      fail(error instanceof SyntaxError ? new FanoutError('invalid_request', `not JSON (${error.message})`) : error);
      return;
    }
    try {
      if (message.type === 'submit') {
        const request = message.request;
        if (typeof request !== 'object' || request === null)
          throw new FanoutError('invalid_request', 'request: expected an object');
        follow(engine.submit({ ...request, tenant }).id);
      } else if (message.type === 'subscribe' && typeof message.task === 'string') {
        follow(message.task);
      } else if (message.type === 'subscribe' && typeof message.batch === 'string') {
        followBatch(message.batch).catch(fail);
      } else if (message.type === 'subscribe' && typeof message.run === 'string') {
        followRun(message.run).catch(fail);
      } else if (message.type === 'unsubscribe' && typeof message.task === 'string') {
        unfollow(message.task);
      } else if (message.type === 'unsubscribe' && typeof message.batch === 'string') {
        batches.delete(message.batch);
      } else if (message.type === 'unsubscribe' && typeof message.run === 'string') {
        runs.get(message.run)?.();
        runs.delete(message.run);
      } else {
        throw new FanoutError(
          'invalid_request',
          'type: expected "submit" (with request), "subscribe" or "unsubscribe" (with task, batch or run)',
        );
      }
    } catch (error) {
      fail(error);
    }
  });
}
