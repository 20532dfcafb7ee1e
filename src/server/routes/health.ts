import type { FastifyInstance } from 'fastify';
import { openApiDocument } from '../openapi.js';
import type { ServerParts } from './parts.js';

/** Metrics (for the operator), the OpenAPI document, and the health checks; with a logger, a failing store is logged. */
export function registerHealthRoutes(app: FastifyInstance, parts: ServerParts): void {
  const { engine, options, metrics } = parts;
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  const openapi = openApiDocument();
  app.get('/openapi.json', async () => openapi);
  app.get('/healthz', async () => ({ ok: true }));
  // Not ready while the store refuses writes (what is accepted now could not be kept), or while the
  // Redis of the shared limits cannot be reached.
  app.get('/readyz', async (_request, reply) => {
    const store = engine.storeHealth();
    const limits = engine.limiter.isAvailable?.() !== false;
    return reply.code(store.ok && limits ? 200 : 503).send({
      ready: store.ok && limits,
      pending: engine.pendingCount,
      inFlight: engine.inFlight,
      ...(store.ok ? {} : { store }),
      ...(limits ? {} : { limits: { ok: false } }),
    });
  });
  if (options.logger) {
    const log = options.logger;
    let loggedSince: number | undefined;
    engine.on('store-error', (event) => {
      // One line when writes start failing (not one per retried flush), and one per task the store could not hold.
      const since = engine.storeHealth().failingSince;
      if (event.error?.code !== 'invalid_request' && since === loggedSince) return;
      loggedSince = since;
      log.error({ store: event.error }, 'task store write failed');
    });
  }
}
