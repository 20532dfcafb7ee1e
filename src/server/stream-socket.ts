import type { WebSocket } from 'ws';
import type { FanoutEngine } from '../create-engine.js';
import { asFanoutError, FanoutError } from '../core/errors.js';
import type { EngineEvent } from '../core/events.js';
import { isTerminal } from '../core/task-state.js';
import type { TaskRequest } from '../core/types.js';
import type { BatchRegistry } from './batches.js';

export interface StreamSocketOptions {
  engine: FanoutEngine;
  batches: BatchRegistry;
  tenant: string;
  /** Most tasks one socket may follow at once. */
  maxSubscriptions: number;
}

type ClientMessage =
  | { type: 'submit'; request: TaskRequest }
  | { type: 'subscribe'; task?: string; batch?: string }
  | { type: 'unsubscribe'; task: string };

/**
 * One WebSocket at `/v1/stream`. A client submits tasks or subscribes to its
 * own tasks and batches, and receives `acknowledged`, `state` changes, stream
 * `delta`s, then `response` or `error` for each. A bad message gets an
 * `error` message; the socket stays open. Another tenant's task or batch is
 * as unknown as one that does not exist.
 */
export function serveStreamSocket(socket: WebSocket, options: StreamSocketOptions): void {
  const { engine, tenant } = options;
  const following = new Set<string>();
  const send = (message: Record<string, unknown>): void => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };
  const fail = (error: unknown, task?: string): void => {
    const e = asFanoutError(error, 'invalid_request');
    send({ type: 'error', ...(task ? { task } : {}), error: { code: e.code, message: e.message } });
  };
  const finish = (id: string): void => {
    following.delete(id);
    const status = engine.status(id);
    if (status?.state === 'completed') send({ type: 'response', task: id, result: status.result, usage: status.usage, timing: status.timing });
    else send({ type: 'error', task: id, state: status?.state, error: status?.error });
  };
  const follow = (id: string): void => {
    const status = engine.status(id);
    if (!status || status.tenant !== tenant) throw new FanoutError('unknown_task', `no task with id ${id}`);
    if (following.size >= options.maxSubscriptions) throw new FanoutError('invalid_request', `this socket already follows ${options.maxSubscriptions} tasks; unsubscribe or open another`);
    send({ type: 'acknowledged', task: id, state: status.state });
    if (isTerminal(status.state)) finish(id);
    else following.add(id);
  };
  const stop = engine.on('*', (event: EngineEvent) => {
    const id = event.taskId;
    if (!id || !following.has(id)) return;
    if (event.type === 'task-delta') send({ type: 'delta', task: id, text: event.delta });
    else if (event.type === 'task-completed' || event.type === 'task-failed' || event.type === 'task-cancelled') finish(id);
    else if (event.state) send({ type: 'state', task: id, state: event.state, at: event.at, ...(event.eta ? { eta: event.eta } : {}) });
  });
  socket.on('close', () => stop());
  socket.on('message', (data, isBinary) => {
    let message: ClientMessage;
    try {
      if (isBinary) throw new FanoutError('invalid_request', 'expected a text frame with a JSON message');
      message = JSON.parse(data.toString()) as ClientMessage;
      if (typeof message !== 'object' || message === null) throw new FanoutError('invalid_request', 'expected a JSON object');
    } catch (error) {
      fail(error instanceof SyntaxError ? new FanoutError('invalid_request', `not JSON (${error.message})`) : error);
      return;
    }
    try {
      if (message.type === 'submit') {
        const request = message.request;
        if (typeof request !== 'object' || request === null) throw new FanoutError('invalid_request', 'request: expected an object');
        follow(engine.submit({ ...request, tenant }).id);
      } else if (message.type === 'subscribe' && typeof message.task === 'string') {
        follow(message.task);
      } else if (message.type === 'subscribe' && typeof message.batch === 'string') {
        const batch = options.batches.get(tenant, message.batch);
        if (!batch) throw new FanoutError('unknown_task', `no batch with id ${message.batch}`);
        for (const entry of batch.entries) if (entry.taskId) follow(entry.taskId);
      } else if (message.type === 'unsubscribe' && typeof message.task === 'string') {
        following.delete(message.task);
      } else {
        throw new FanoutError('invalid_request', 'type: expected "submit" (with request), "subscribe" (with task or batch) or "unsubscribe" (with task)');
      }
    } catch (error) {
      fail(error);
    }
  });
}
