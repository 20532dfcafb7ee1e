import { setMaxListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import websocket from '@fastify/websocket';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { requestFromChatBody } from '../batch/batch-line.js';
import { chatCompletion, openAiUsage } from '../batch/output-line.js';
import type { FanoutEngine } from '../create-engine.js';
import { FanoutError } from '../contracts/errors.js';
import { assertJsonBounds } from '../core/json-bounds.js';
import { isTerminal } from '../contracts/task-state.js';
import type { TaskStatus } from '../core/task.js';
import { isEnd } from '../core/events.js';
import { ZERO_USAGE, type TaskRequest, type Usage } from '../contracts/types.js';
import { engineMetrics } from '../metrics/prometheus.js';
import { ApiKeys } from './api-keys.js';
import { BatchRegistry, batchLines } from './batches.js';
import { openApiDocument } from './openapi.js';
import { pageOf, RunRegistry, type ServerRun } from './runs.js';
import { TenantQuota, type QuotaDecision, type TenantQuotaOptions } from './tenant-quota.js';
import { estimateInputTokens } from '../limits/estimate.js';
import { serveStreamSocket } from './stream-socket.js';
import { streamTaskEvents } from './task-events.js';
import { SHUTTING_DOWN } from './shutting-down.js';
import {
  capConnections,
  DEFAULT_CONNECTION_LIMITS,
  TenantStreams,
  timeoutOptions,
  type ConnectionLimits,
} from './connections.js';
import { errorBody, httpError } from './http-errors.js';

export interface FanoutServerOptions {
  engine: FanoutEngine;
  /** Keys and their tenants. With none, every request is the tenant "default" (for loopback use). */
  keys?: ApiKeys;
  /** Largest request body, in bytes. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Models listed by `GET /v1/models`. */
  models?: readonly string[];
  /** Provider for bare model names in the gateway (`gpt-4o-mini` → `openai:gpt-4o-mini`). */
  defaultProvider?: string;
  /** Most lines one `POST /v1/batches` may carry. Default 50,000. */
  maxBatchLines?: number;
  /** Browser origins allowed to open the WebSocket (besides the server's own). Default none. */
  allowedOrigins?: readonly string[];
  /** Largest WebSocket message, in bytes. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Tasks one WebSocket may follow at once. Default 1,000. */
  maxSubscriptions?: number;
  /**
   * The operator's keys for `GET /metrics`, which names every tenant's models,
   * pipelines and steps. With tenant keys and no operator key, `/metrics` is
   * refused. Without any keys (loopback use) it is open like every route.
   */
  metricsKeys?: ApiKeys;
  /** Each tenant's own request quota at the gateway (`/v1/chat/completions`). Default: none. */
  tenantQuota?: TenantQuotaOptions;
  /** Request timeouts and connection caps; each field has its default. */
  connections?: ConnectionLimits;
  /**
   * How long ended tasks, batches and runs are kept in the store, in ms: a
   * sweep every minute removes what ended longer ago (nothing unfinished, and
   * no task of a batch still running). Default 7 days; 0 keeps everything.
   */
  retentionMs?: number;
  /**
   * Where request logs go (one JSON line per request: method, path, status,
   * time, tenant). Never bodies, prompts, answers, keys or query strings.
   * Default: no logs.
   */
  logger?: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d+)?$/i;
/** Bodies a server without keys takes: ones a browser cannot send from another site without asking first (CORS preflight). */
const PREFLIGHTED_TYPES = /^application\/(json|x-ndjson|jsonl)\s*(;|$)/i;

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

function send(reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body } = httpError(error);
  return reply.code(status).send(body);
}

/** How long ended work stays in the store by default: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** How often the store is swept for ended work older than the retention. */
export const SWEEP_INTERVAL_MS = 60_000;

/** Removes ended work older than `retentionMs` from the engine's store now and every minute after; returns the stop. */
function sweepOldRecords(engine: FanoutEngine, retentionMs: number, logger?: Logger): () => void {
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
 * Why a request that a web page could have made must be refused, if it must.
 * Any request naming a foreign `Origin` is (fanout sends no CORS headers, so
 * no other site's page may use it). Without keys, every request must also
 * name a loopback `Host` (a page on a rebound DNS name reaches the loopback
 * address under its own host name) and carry a body only as JSON, which a
 * page cannot send to another site without a preflight that fanout never
 * answers.
 */
function browserRefusal(
  request: FastifyRequest,
  hasKeys: boolean,
  allowedOrigins: readonly string[],
): string | undefined {
  const host = request.headers.host ?? '';
  if (!hasKeys && !LOOPBACK_HOST.test(host))
    return `Host ${JSON.stringify(host.slice(0, 100))} is not a loopback name; a server without API keys answers only to localhost, 127.0.0.1 and [::1]`;
  const origin = request.headers.origin;
  if (
    origin !== undefined &&
    origin !== `http://${host}` &&
    origin !== `https://${host}` &&
    !allowedOrigins.includes(origin)
  ) {
    return `origin ${origin.slice(0, 200)} may not use this server (list it in allowedOrigins to let its pages in)`;
  }
  const type = request.headers['content-type'];
  if (!hasKeys && type !== undefined && request.method !== 'GET' && !PREFLIGHTED_TYPES.test(type)) {
    return `content-type ${type.slice(0, 100)}: a server without API keys takes only application/json or application/x-ndjson bodies`;
  }
  return undefined;
}

/** The task of `id` if it belongs to `tenant`, from memory or the store; another tenant's task is as unknown as a missing one. */
async function ownTask(engine: FanoutEngine, tenant: string, id: string): Promise<TaskStatus | undefined> {
  const status = await engine.find(id);
  return status && status.tenant === tenant ? status : undefined;
}

const notFound = (id: string) => new FanoutError('unknown_task', `no task with id ${id}`);

/**
 * fanout over HTTP: the task API (`/v1/tasks`) and an OpenAI-compatible
 * gateway (`/v1/chat/completions`, `/v1/models`) on one engine, so every
 * client shares its limits, cache and retries. Every bad request is a 4xx
 * with a JSON error naming what was wrong; nothing a client sends makes a 5xx.
 */
export function createFanoutServer(options: FanoutServerOptions): FastifyInstance {
  const { engine } = options;
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
  const batches = new BatchRegistry(engine, {
    defaultProvider: options.defaultProvider,
    maxLines: options.maxBatchLines ?? 50_000,
  });
  // Batches a crash cut short are watched to their end again (their tasks are already back in the engine).
  let stopSweeps = (): void => {};
  app.addHook('onReady', async () => {
    await engine.recovered;
    await batches.resume();
    await runs.resume();
    stopSweeps = sweepOldRecords(engine, options.retentionMs ?? DEFAULT_RETENTION_MS, options.logger);
  });
  app.addHook('onClose', async () => stopSweeps());
  const metrics = engineMetrics(engine);
  const runs = new RunRegistry(engine, (run) => metrics.observeRun(run));
  // The gateway answers 429 at once from the same buckets that pace the tenant's tasks, batches and runs in the engine.
  const quota = options.tenantQuota
    ? new TenantQuota(engine.clock, {
        ...options.tenantQuota,
        ...(engine.tenantLimiter ? { limiter: engine.tenantLimiter } : {}),
      })
    : undefined;
  // A batch may be sent as JSON Lines as well as a JSON array; as text/plain only to a server with keys
  // (a web page can post text/plain to any address without asking first).
  const lineTypes =
    keys.size > 0
      ? ['application/x-ndjson', 'application/jsonl', 'text/plain']
      : ['application/x-ndjson', 'application/jsonl'];
  app.addContentTypeParser(lineTypes, { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const metricsKeys = options.metricsKeys ?? new ApiKeys();
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
  app.decorateRequest('tenant', '');

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

  // Sockets are not closed when the shutdown starts: each closes (1001) once it follows nothing, or when the grace period ends.
  app.register(websocket, { options: { maxPayload: options.maxFrameBytes ?? 64 * 1024 }, preClose: (done) => done() });
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] as string;
    if (OPEN_PATHS.has(path)) return;
    const refusal = browserRefusal(request, keys.size > 0, options.allowedOrigins ?? []);
    if (refusal) return send(reply, new FanoutError('forbidden', refusal));
    if (path === '/metrics' && keys.size > 0) {
      if (metricsKeys.tenantOf(request.headers.authorization) !== undefined) return;
      const message =
        metricsKeys.size > 0
          ? 'GET /metrics needs an operator key (--metrics-key)'
          : "GET /metrics names every tenant's models and pipelines: start the server with an operator key (--metrics-key) to read it";
      return send(reply, new FanoutError('forbidden', message));
    }
    const tenant = keys.size === 0 ? 'default' : keys.tenantOf(request.headers.authorization);
    if (tenant === undefined)
      return send(reply, new FanoutError('auth', 'a valid API key is needed: Authorization: Bearer <key>'));
    request.tenant = tenant;
  });

  // Every JSON body is bounded once, here, before any route reads it: a value nested thousands deep
  // would overflow whatever walks it later (the store's serialiser, the cache key).
  app.addHook('preValidation', async (request) => {
    if (typeof request.body === 'object' && request.body !== null) assertJsonBounds(request.body, 'body');
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof FanoutError) return send(reply, error);
    // Fastify's own refusals (bad JSON, too large, wrong content type) are the client's errors.
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    // A fault of fanout's own: the client learns nothing of it, the log learns its cause.
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const message = status < 500 ? error.message : 'internal error';
    return reply.code(status).send(errorBody(status < 500 ? 'invalid_request' : 'internal_error', message, status));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, 404)),
  );

  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  const openapi = openApiDocument();
  app.get('/openapi.json', async () => openapi);
  app.get('/healthz', async () => ({ ok: true }));
  // Not ready while the store refuses writes: what is accepted now could not be kept.
  app.get('/readyz', async (_request, reply) => {
    const store = engine.storeHealth();
    return reply.code(store.ok ? 200 : 503).send({
      ready: store.ok,
      pending: engine.pendingCount,
      inFlight: engine.inFlight,
      ...(store.ok ? {} : { store }),
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

  app.post('/v1/tasks', async (request, reply) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return send(reply, new FanoutError('invalid_request', '(root): expected a JSON object'));
    const handle = engine.submit({ ...(body as TaskRequest), tenant: request.tenant });
    const query = request.query as { wait?: string };
    const wait = query.wait === '1' || query.wait === 'true' || /\bwait\b/i.test(String(request.headers.prefer ?? ''));
    // Acknowledged once stored (by the next group write, a few ms away): a crash after the answer loses nothing.
    if (!wait) {
      await engine.written();
      return reply.code(202).send({ id: handle.id, state: handle.status().state });
    }
    holdOpen(request, reply);
    if ((await untilEnd(handle)) === 'ending')
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ id: handle.id, state: handle.status().state, ...errorBody(SHUTTING_DOWN.code, SHUTTING_DOWN.message) });
    return reply.code(200).send(handle.status());
  });

  app.get('/v1/tasks/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const status = await ownTask(engine, request.tenant, id);
    return status ? reply.send(status) : send(reply, notFound(id));
  });

  app.delete('/v1/tasks/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await ownTask(engine, request.tenant, id))) return send(reply, notFound(id));
    engine.cancel(id);
    return reply.send({ id, state: (await engine.find(id))?.state });
  });

  app.get('/v1/tasks/:id/events', async (request, reply) => {
    const { id } = request.params as { id: string };
    const status = await ownTask(engine, request.tenant, id);
    if (!status) return send(reply, notFound(id));
    holdOpen(request, reply);
    return streamTaskEvents(engine, status, reply, ending.signal);
  });

  app.post('/v1/batches', async (request, reply) => {
    const batch = await batches.create(request.tenant, batchLines(request.body));
    return reply.code(202).send(batches.summary(batch));
  });

  const ownBatch = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const batch = await batches.get(request.tenant, id);
    if (!batch) throw new FanoutError('unknown_task', `no batch with id ${id}`);
    return batch;
  };
  app.delete('/v1/batches/:id', async (request) => {
    const batch = await ownBatch(request);
    await batches.cancel(batch);
    return batches.summary(batch);
  });

  app.post('/v1/runs', async (request, reply) => {
    // Acknowledged once its record is stored: after a crash the run goes on, its calls under stable ids.
    const run = await runs.start(request.tenant, request.body);
    return reply.code(202).send(runs.view(run));
  });

  const ownRun = async (request: FastifyRequest): Promise<ServerRun> => {
    const { id } = request.params as { id: string };
    const run = await runs.get(request.tenant, id);
    if (!run) throw new FanoutError('unknown_task', `no run with id ${id}`);
    return run;
  };
  app.get('/v1/runs/:id', async (request) => runs.view(await ownRun(request)));
  app.delete('/v1/runs/:id', async (request) => {
    const run = await ownRun(request);
    runs.cancel(run);
    return runs.view(run);
  });
  app.get('/v1/runs/:id/steps/:step/items', async (request) =>
    runs.items(await ownRun(request), (request.params as { step: string }).step, pageOf(request.query)),
  );
  app.get('/v1/runs/:id/calls', async (request) => runs.calls(await ownRun(request), pageOf(request.query)));

  app.get('/v1/batches/:id', async (request) => batches.summary(await ownBatch(request)));

  app.get('/v1/batches/:id/results', async (request, reply) => {
    const batch = await ownBatch(request);
    const query = request.query as { offset?: string; limit?: string };
    const page = query.offset !== undefined || query.limit !== undefined ? pageOf(query) : undefined;
    holdOpen(request, reply);
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for await (const line of batches.results(batch, page)) {
      if (!reply.raw.write(line)) await new Promise((resolve) => reply.raw.once('drain', resolve));
    }
    reply.raw.end();
  });

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
        engine,
        batches,
        runs,
        tenant: request.tenant,
        maxSubscriptions: options.maxSubscriptions ?? 1000,
        stopping: stopping.signal,
        ending: ending.signal,
      });
    });
  });

  app.get('/v1/models', async () => ({
    object: 'list',
    data: (options.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: id.split(':')[0] })),
  }));

  app.post('/v1/chat/completions', async (request, reply) => {
    const { includeUsage, ...task } = requestFromChatBody(request.body, { defaultProvider: options.defaultProvider });
    holdOpen(request, reply);
    let settle: ((usage?: Usage) => void) | undefined;
    if (quota) {
      let decision: QuotaDecision;
      try {
        decision = await quota.admit(request.tenant, {
          inputTokens: estimateInputTokens(task),
          outputTokens: task.maxTokens ?? 0,
        });
      } catch (error) {
        return send(reply, error);
      }
      if (!decision.allowed) {
        const kind = decision.dimension;
        return reply
          .code(429)
          .headers({
            'retry-after': String(Math.ceil(decision.retryAfterMs / 1000)),
            'retry-after-ms': String(decision.retryAfterMs),
            [`x-ratelimit-limit-${kind}`]: String(decision.limit),
            [`x-ratelimit-remaining-${kind}`]: String(decision.remaining),
            [`x-ratelimit-reset-${kind}`]: `${(decision.resetMs / 1000).toFixed(3)}s`,
          })
          .send(
            errorBody(
              'rate_limit_exceeded',
              `${kind} rate limit reached for tenant ${request.tenant}; try again in ${(decision.retryAfterMs / 1000).toFixed(3)}s`,
              kind,
            ),
          );
      }
      settle = decision.settle;
    }
    // Not kept in the store: the client waits on this connection, and after a restart nobody would.
    const handle = engine.submit(
      { ...task, tenant: request.tenant },
      { durable: false, tenantCharged: quota?.sharesEngineLimits === true },
    );
    // The tenant is charged what the call really used, once it has ended; an answer from the cache costs no tokens.
    if (settle)
      void handle.result().then(
        (result) => settle(result.cache ? ZERO_USAGE : result.usage),
        () => settle(handle.status().usage),
      );
    if (!task.stream) {
      if ((await untilEnd(handle)) === 'ending')
        return reply.code(503).header('retry-after', '5').send(errorBody(SHUTTING_DOWN.code, SHUTTING_DOWN.message));
      try {
        await handle.result();
      } catch (error) {
        return send(reply, error);
      }
      return reply.send(chatCompletion(handle.status()));
    }
    return streamCompletion(engine, handle.id, reply, { includeUsage, signal: ending.signal });
  });

  return app;
}

/**
 * Streams a task's deltas as OpenAI `chat.completion.chunk` events. A failed
 * attempt before the first delta is retried unseen; once text has gone out,
 * a failure ends the stream with an error event (the text cannot be taken back).
 */
async function streamCompletion(
  engine: FanoutEngine,
  id: string,
  reply: FastifyReply,
  options: { includeUsage: boolean; signal: AbortSignal },
): Promise<void> {
  const { includeUsage, signal } = options;
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const created = Math.floor(engine.clock.now() / 1000);
  const model = engine.status(id)?.model ?? '';
  const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: unknown): string =>
    `data: ${JSON.stringify({ id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created, model, choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;
  // The client went away before the end: stop paying for an answer nobody reads.
  out.on('close', () => {
    if (!out.writableEnded) engine.cancel(id);
  });
  let sent = false;
  const events = engine.events({
    taskIds: [id],
    until: isEnd,
    signal,
  });
  const current = engine.status(id);
  if (current && isTerminal(current.state)) await events.return?.();
  out.write(chunk({ role: 'assistant', content: '' }, null));
  for await (const event of events) {
    if (event.type === 'task-delta' && event.delta) {
      sent = true;
      out.write(chunk({ content: event.delta }, null));
    } else if (event.type === 'attempt-failed' && sent) {
      engine.cancel(id);
    }
  }
  const status = engine.status(id);
  if (status?.state === 'completed' && status.result) {
    if (!sent) out.write(chunk({ content: status.result.text }, null));
    out.write(chunk({}, status.result.finishReason));
    if (includeUsage) out.write(chunk({}, null, openAiUsage(status.result.usage)));
  } else {
    const error =
      signal.aborted && status && !isTerminal(status.state)
        ? SHUTTING_DOWN
        : (status?.error ?? { code: 'cancelled', message: 'the stream was cut short after text had been sent' });
    out.write(`data: ${JSON.stringify(errorBody(error.code, error.message))}\n\n`);
  }
  out.end('data: [DONE]\n\n');
}
