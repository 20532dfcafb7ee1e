import type { FastifyInstance } from 'fastify';
import type { Clock } from '../contracts/clock.js';
import type { FanoutEngine } from '../create-engine.js';
import { endOpenStreams } from './server.js';

export interface ShutdownOptions {
  /** How long requests in progress (waits, streams, event feeds) may take to finish. */
  graceMs: number;
  clock: Clock;
  /** Resolves early to skip the rest of the grace period (a second Ctrl-C). */
  now?: Promise<void>;
}

export interface ShutdownReport {
  /** True when the grace period ended (or was cut short) with connections still open; they were closed. */
  forced: boolean;
}

/**
 * Stops a server in order: no new connections (requests arriving on kept-alive
 * ones get 503), the requests in progress get up to `graceMs` to finish while
 * the engine keeps working for them, then whatever is still open is closed and
 * the engine stops. Tasks that had not ended stay in the engine's store, where
 * the next start finds them.
 */
export async function shutDownServer(
  app: FastifyInstance,
  engine: FanoutEngine,
  options: ShutdownOptions,
): Promise<ShutdownReport> {
  const closed = app.close();
  let cancelTimer = (): void => {};
  const deadline = new Promise<'deadline'>((resolve) => {
    cancelTimer = options.clock.setTimer(options.graceMs, () => resolve('deadline'));
  });
  const cutShort = options.now?.then(() => 'deadline' as const) ?? new Promise<never>(() => {});
  const first = await Promise.race([closed.then(() => 'closed' as const), deadline, cutShort]);
  cancelTimer();
  if (first === 'deadline') {
    // Streams and waits still open get their final message first: `[DONE]`, an SSE error event, a 503, a 1001 close.
    await endOpenStreams(app);
    app.server.closeAllConnections();
    await closed;
  }
  await engine.close();
  return { forced: first === 'deadline' };
}
