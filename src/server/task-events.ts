import type { FastifyReply } from 'fastify';
import type { TaskService } from '../core/task-service.js';
import { isTerminal } from '../contracts/task-state.js';
import { SHUTTING_DOWN } from './shutting-down.js';
import { isEnd, type TaskEndEvent, type TaskEvent } from '../core/events.js';
import { taskMessage } from './task-messages.js';
import type { TaskStatus } from '../core/task.js';

/**
 * A task's events as server-sent events: `acknowledged` with its state now,
 * then every state change and stream delta as it happens, and `response` (its
 * result) or `error` at the end, after which the stream closes.
 */
export async function streamTaskEvents(
  engine: TaskService,
  status: TaskStatus,
  reply: FastifyReply,
  signal?: AbortSignal,
): Promise<void> {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const send = (event: string, data: unknown): void => {
    out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  // The server's grace period ending stops the stream too, with an `error` event saying so.
  const events = engine.events({ taskIds: [status.id], until: isEnd, ...(signal ? { signal } : {}) });
  out.on('close', () => void events.return?.());
  send('acknowledged', { id: status.id, state: status.state });
  if (!isTerminal(status.state)) {
    for await (const event of events) {
      if (isEnd(event) || !('taskId' in event)) break;
      const { type, ...data } = taskMessage(event);
      send(type, { id: status.id, ...data });
      // The event under its engine name too (task-queued, task-delta, …), as before `state` and `delta`: until the next release.
      send(event.type, legacyData(status.id, event));
    }
  } else {
    await events.return?.();
  }
  // A task read from the store (ended before this engine's time) is not in memory: its stored status is its end.
  const end = engine.status(status.id) ?? (isTerminal(status.state) ? status : undefined);
  if (end?.state === 'completed')
    send('response', { id: end.id, result: end.result, usage: end.usage, timing: end.timing });
  else if (end && !isTerminal(end.state)) send('error', { id: status.id, state: end.state, error: SHUTTING_DOWN });
  else send('error', { id: status.id, state: end?.state, error: end?.error });
  out.end();
}

/** What the server-sent events carried under the engine's event names. */
function legacyData(id: string, event: Exclude<TaskEvent, TaskEndEvent>): object {
  return {
    id,
    state: event.state,
    at: event.at,
    attempt: 'attempt' in event ? event.attempt : undefined,
    eta: 'eta' in event ? event.eta : undefined,
    delta: 'delta' in event ? event.delta : undefined,
    error: 'error' in event ? event.error : undefined,
  };
}
