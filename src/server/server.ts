import { setMaxListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import websocket from '@fastify/websocket';
import { DashboardFeed } from './dashboard/feed.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { FanoutEngine } from '../create-engine.js';
import type { TaskService } from '../core/task-service.js';
import { engineMetrics } from '../metrics/prometheus.js';
import { ApiKeys } from './api-keys.js';
import { BatchRegistry } from './batches.js';
import {
  capConnections,
  DEFAULT_CONNECTION_LIMITS,
  TenantStreams,
  timeoutOptions,
  type ConnectionLimits,
} from './connections.js';
import { registerGuards, STREAM_PROTOCOL } from './guards.js';
import { registerBatchRoutes } from './routes/batches.js';
import { registerGatewayRoutes } from './routes/gateway.js';
import { registerHealthRoutes } from './routes/health.js';
import type { ServerParts } from './routes/parts.js';
import { registerRunRoutes } from './routes/runs.js';
import { registerStreamSocket } from './routes/stream-socket.js';
import { registerTaskRoutes } from './routes/tasks.js';
import { RunRegistry } from './runs.js';
import type { FanoutServerOptions } from './server-options.js';
import { TenantQuota } from './tenant-quota.js';

/**
 * What a request log line holds, field by field: the path without its query
 * (a key or a prompt could hide there), never headers or bodies; of an error,
 * its kind, code and message (fanout's errors never carry a prompt or a key),
 * never its other fields. Listing what may be logged, rather than redacting
 * what may not, also keeps a line cheap: wildcard redaction cost a loaded
 * server a third of its requests.
 */
const REQUEST_LOG_SERIALIZERS = {
  req: (request: { method?: string; url?: string; tenant?: string }) => ({
    method: request.method,
    path: request.url?.split('?')[0],
    tenant: request.tenant || undefined,
  }),
  res: (reply: { statusCode?: number }) => ({ status: reply.statusCode }),
  err: (error: Error & { code?: unknown; statusCode?: unknown }) => ({
    type: error.name,
    code: typeof error.code === 'string' ? error.code : undefined,
    message: error.message,
    ...(typeof error.statusCode === 'number' && error.statusCode < 500 ? {} : { stack: error.stack }),
  }),
};

/** One log line per request, once it has been answered, with what was asked; rather than Fastify's two. */
class CompletedRequestsOnly extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error)
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** How long ended work stays in the store by default: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** How often the store is swept for ended work older than the retention. */
export const SWEEP_INTERVAL_MS = 60_000;

/** Removes ended work older than `retentionMs` from the engine's store now and every minute after; returns the stop. */
function sweepOldRecords(engine: TaskService, retentionMs: number, logger?: Logger): () => void {
  const store = engine.store;
  if (!store || retentionMs <= 0) return () => {};
  let cancel: (() => void) | undefined;
  let stopped = false;
  const sweep = async (): Promise<void> => {
    try {
      const gone = await store.prune(engine.clock.now() - retentionMs);
      if (gone.tasks + gone.records > 0) logger?.info({ pruned: gone }, 'removed ended work past its retention');
    } catch (error) {
      logger?.error({ err: error }, 'retention sweep failed');
    }
    if (!stopped) cancel = engine.clock.setTimer(SWEEP_INTERVAL_MS, () => void sweep());
  };
  void sweep();
  return () => {
    stopped = true;
    cancel?.();
  };
}

/** Each server's signal that its grace period is over (open streams end with a final message), and what is still open. */
const endings = new WeakMap<
  FastifyInstance,
  { controller: AbortController; open: Set<ServerResponse>; clock: FanoutEngine['clock'] }
>();

/** How long final messages get to reach their clients before the connections are cut. */
const LAST_WORD_MS = 1000;

/**
 * Ends every stream and wait still open on `app` with a final message: SSE an
 * `error` event, gateway streams an error chunk and `[DONE]`, `?wait=1` a 503
 * with the task id, WebSockets close 1001. Called at the end of a shutdown's
 * grace period, before the connections close.
 */
export async function endOpenStreams(app: FastifyInstance): Promise<void> {
  const ending = endings.get(app);
  if (!ending) return;
  ending.controller.abort();
  // The final messages reach their clients (each response finishes, each socket's close is answered) before anything is cut.
  const finished = [...ending.open].map(
    (response) =>
      new Promise<void>((resolve) =>
        response.writableFinished || response.destroyed
          ? resolve()
          : response.once('close', () => resolve()).once('finish', () => resolve()),
      ),
  );
  const sockets = [...(app.websocketServer?.clients ?? [])].map(
    (client) =>
      new Promise<void>((resolve) =>
        client.readyState === client.CLOSED ? resolve() : client.once('close', () => resolve()),
      ),
  );
  await Promise.race([Promise.all([...finished, ...sockets]), ending.clock.sleep(LAST_WORD_MS)]);
  for (const client of app.websocketServer?.clients ?? []) client.terminate();
}

/**
 * fanout over HTTP: the task API (`/v1/tasks`) and an OpenAI-compatible
 * gateway (`/v1/chat/completions`, `/v1/models`) on one engine, so every
 * client shares its limits, cache and retries. Every bad request is a 4xx
 * with a JSON error naming what was wrong; nothing a client sends makes a 5xx.
 */
export function createFanoutServer(options: FanoutServerOptions): FastifyInstance {
  const { engine } = options;
  const tasks: TaskService = options.tasks ?? engine;
  const keys = options.keys ?? new ApiKeys();
  const given = Object.entries(options.connections ?? {}).filter(([, value]) => value !== undefined);
  const limits: Required<ConnectionLimits> = { ...DEFAULT_CONNECTION_LIMITS, ...Object.fromEntries(given) };
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    return503OnClosing: true,
    ...timeoutOptions(limits),
    ...(options.logger
      ? {
          loggerInstance: options.logger.child(
            {},
            { serializers: REQUEST_LOG_SERIALIZERS },
          ) as unknown as FastifyBaseLogger,
        }
      : { logger: false }),
    logController: new CompletedRequestsOnly(),
  });
  capConnections(app.server, limits.maxConnections);
  const streams = new TenantStreams(limits.maxStreamsPerTenant);
  /** Counts a request that holds its connection open against its tenant, until the response closes. */
  const holdOpen = (request: FastifyRequest, reply: FastifyReply): void => {
    const release = streams.take(request.tenant);
    openResponses.add(reply.raw);
    reply.raw.once('close', () => {
      release();
      openResponses.delete(reply.raw);
    });
  };
  const batches = new BatchRegistry(tasks, {
    defaultProvider: options.defaultProvider,
    maxLines: options.maxBatchLines ?? 50_000,
  });
  // Batches a crash cut short are watched to their end again (their tasks are already back in the engine).
  let stopSweeps = (): void => {};
  app.addHook('onReady', async () => {
    await engine.recovered;
    await tasks.recovered;
    await batches.resume();
    await runs.resume(tasks.shared === true);
    stopSweeps = sweepOldRecords(tasks, options.retentionMs ?? DEFAULT_RETENTION_MS, options.logger);
    if (tasks.shared) stopRunWatch = runs.watchShared();
  });
  let stopRunWatch = (): void => {};
  app.addHook('onClose', async () => {
    dashboard.close();
    stopSweeps();
    stopRunWatch();
  });
  const metrics = engineMetrics(engine);
  const runs = new RunRegistry(
    tasks,
    (run, tenant) => {
      metrics.observeRun(run);
      dashboard.observeRun(tenant, run);
    },
    options.tools,
  );
  const dashboard = new DashboardFeed({ engine, batches, runs, models: options.models ?? [] });
  const quota = tenantQuotaOf(options);
  acceptBatchLines(app, keys.size > 0);
  const metricsKeys = options.metricsKeys ?? new ApiKeys();
  const { ending, stopping, openResponses, untilEnd } = shutdownParts(app, engine);
  app.decorateRequest('tenant', '');

  registerWebSocket(app, options.maxFrameBytes);
  const parts: ServerParts = {
    engine,
    tasks,
    options,
    keys,
    metricsKeys,
    batches,
    runs,
    quota,
    metrics,
    streams,
    dashboard,
    ending,
    stopping,
    holdOpen,
    untilEnd,
  };
  registerGuards(app, parts);
  registerHealthRoutes(app, parts);
  registerTaskRoutes(app, parts);
  registerBatchRoutes(app, parts);
  registerRunRoutes(app, parts);
  registerStreamSocket(app, parts);
  registerGatewayRoutes(app, parts);
  registerDashboardRoutes(app);
  return app;
}

/** The gateway answers 429 at once from the same buckets that pace the tenant's tasks, batches and runs in the engine. */
function tenantQuotaOf({ engine, tenantQuota }: FanoutServerOptions): TenantQuota | undefined {
  if (!tenantQuota) return undefined;
  return new TenantQuota(engine.clock, {
    ...tenantQuota,
    ...(engine.tenantLimiter ? { limiter: engine.tenantLimiter } : {}),
  });
}

/** Batch bodies as JSON Lines. */
function acceptBatchLines(app: FastifyInstance, hasKeys: boolean): void {
  // A batch may be sent as JSON Lines as well as a JSON array; as text/plain only to a server with keys
  // (a web page can post text/plain to any address without asking first).
  const lineTypes = hasKeys
    ? ['application/x-ndjson', 'application/jsonl', 'text/plain']
    : ['application/x-ndjson', 'application/jsonl'];
  app.addContentTypeParser(lineTypes, { parseAs: 'string' }, (_request, body, done) => done(null, body));
}

/**
 * The WebSocket plugin. Sockets are not closed when the shutdown starts: each
 * closes (1001) once it follows nothing, or when the grace period ends. A
 * browser's socket offers `fanout` and its key (see guards); the server
 * answers with `fanout` alone.
 */
function registerWebSocket(app: FastifyInstance, maxFrameBytes = 64 * 1024): void {
  app.register(websocket, {
    options: {
      maxPayload: maxFrameBytes,
      handleProtocols: (offered) => (offered.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
    },
    preClose: (done) => done(),
  });
}

/**
 * How a server ends: `stopping` aborts when a shutdown starts (connections
 * whose request has ended close at once from then on), `ending` when its grace
 * period is over (`endOpenStreams`); `untilEnd` waits for a task or for that.
 */
function shutdownParts(
  app: FastifyInstance,
  engine: FanoutEngine,
): Pick<ServerParts, 'ending' | 'stopping' | 'untilEnd'> & { openResponses: Set<ServerResponse> } {
  const ending = new AbortController();
  const openResponses = new Set<ServerResponse>();
  endings.set(app, { controller: ending, open: openResponses, clock: engine.clock });
  // One listener per open stream or wait, by design: no leak to warn about.
  setMaxListeners(0, ending.signal);
  /** Resolves when the task ends, or with 'ending' when the server's grace period is over first. */
  const untilEnd = (handle: { result(): Promise<unknown> }): Promise<'ended' | 'ending'> =>
    new Promise((resolve) => {
      if (ending.signal.aborted) return resolve('ending');
      const stop = (): void => resolve('ending');
      ending.signal.addEventListener('abort', stop, { once: true });
      void handle
        .result()
        .then(
          () => resolve('ended'),
          () => resolve('ended'),
        )
        .finally(() => ending.signal.removeEventListener('abort', stop));
    });
  // While the server closes, a connection whose request has ended is closed at once
  // rather than idling until its keep-alive timeout holds the shutdown up.
  let closing = false;
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal);
  app.addHook('preClose', async () => {
    closing = true;
    stopping.abort();
  });
  // On the raw server so that streams (hijacked replies) count too.
  app.server.on('request', (_request, response: ServerResponse) => {
    response.once('finish', () => {
      if (closing) app.server.closeIdleConnections();
    });
  });

  return { ending, stopping, openResponses, untilEnd };
}
