import type { FastifyReply } from 'fastify';
import type { FanoutEngine } from '../create-engine.js';
import { isTerminal } from '../contracts/task-state.js';
import { SHUTTING_DOWN } from './shutting-down.js';
import type { TaskStatus } from '../core/task.js';

/**
 * A task's events as server-sent events: `acknowledged` with its state now,
 * then every state change and stream delta as it happens, and `response` (its
 * result) or `error` at the end, after which the stream closes.
 */
export async function streamTaskEvents(
  engine: FanoutEngine,
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
  const terminal = (type: string): boolean =>
    type === 'task-completed' || type === 'task-failed' || type === 'task-cancelled';
  // The server's grace period ending stops the stream too, with an `error` event saying so.
  const events = engine.events({ taskIds: [status.id], until: (e) => terminal(e.type), ...(signal ? { signal } : {}) });
  out.on('close', () => void events.return?.());
  send('acknowledged', { id: status.id, state: status.state });
  if (!isTerminal(status.state)) {
    for await (const event of events) {
      if (terminal(event.type)) break;
      send(event.type, {
        id: status.id,
        state: event.state,
        at: event.at,
        attempt: event.attempt,
        eta: event.eta,
        delta: event.delta,
        error: event.error,
      });
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
