import type { FastifyInstance } from 'fastify';
import { serveStreamSocket } from '../stream-socket.js';
import type { ServerParts } from './parts.js';

/** The WebSocket at /v1/stream, counted against its tenant's open streams. */
export function registerStreamSocket(app: FastifyInstance, parts: ServerParts): void {
  const { tasks, options, batches, runs, streams, stopping, ending, dashboard } = parts;
  app.register(async (scope) => {
    scope.get('/v1/stream', { websocket: true }, (socket, request) => {
      let release: () => void;
      try {
        release = streams.take(request.tenant);
      } catch (error) {
        socket.close(1013, (error as Error).message.slice(0, 120));
        return;
      }
      socket.once('close', release);
      serveStreamSocket(socket, {
        tasks,
        batches,
        runs,
        tenant: request.tenant,
        maxSubscriptions: options.maxSubscriptions ?? 1000,
        stopping: stopping.signal,
        ending: ending.signal,
        dashboard,
      });
    });
  });
}
