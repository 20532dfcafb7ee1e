import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FanoutError } from '../contracts/errors.js';
import { assertJsonBounds } from '../core/json-bounds.js';
import { errorBody } from '../openai/wire.js';
import { send } from './http-errors.js';
import { isDashboardAsset } from './routes/dashboard.js';
import type { ServerParts } from './routes/parts.js';

const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d+)?$/i;
/** Bodies a server without keys takes: ones a browser cannot send from another site without asking first (CORS preflight). */
const PREFLIGHTED_TYPES = /^application\/(json|x-ndjson|jsonl)\s*(;|$)/i;

/**
 * What every request passes before a route: the browser checks, the key (the
 * operator's for /metrics), JSON bounds on the body; and how errors and unknown
 * routes are answered.
 */
export function registerGuards(app: FastifyInstance, parts: ServerParts): void {
  const { options, keys, metricsKeys } = parts;
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] as string;
    if (OPEN_PATHS.has(path)) return;
    const refusal = browserRefusal(request, keys.size > 0, options.allowedOrigins ?? []);
    if (refusal) return send(reply, new FanoutError('forbidden', refusal));
    if (request.method === 'GET' && isDashboardAsset(path)) return;
    if (path === '/metrics' && keys.size > 0) {
      if (metricsKeys.tenantOf(request.headers.authorization) !== undefined) return;
      const message =
        metricsKeys.size > 0
          ? 'GET /metrics needs an operator key (--metrics-key)'
          : "GET /metrics names every tenant's models and pipelines: start the server with an operator key (--metrics-key) to read it";
      return send(reply, new FanoutError('forbidden', message));
    }
    const authorization =
      request.headers.authorization ?? (path === '/v1/stream' ? keyFromProtocols(request) : undefined);
    const tenant = keys.size === 0 ? 'default' : keys.tenantOf(authorization);
    if (tenant === undefined)
      return send(reply, new FanoutError('auth', 'a valid API key is needed: Authorization: Bearer <key>'));
    request.tenant = tenant;
    // Work taken now could not be held to the shared limits: say so at once, rather than hold the caller.
    if (request.method === 'POST' && parts.engine.limiter.isAvailable?.() === false) {
      reply.header('retry-after', '1');
      return send(
        reply,
        new FanoutError('overloaded', 'the Redis that holds the shared limits cannot be reached; try again shortly'),
      );
    }
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
}

/** The WebSocket subprotocol that says the socket speaks fanout's messages; a browser's socket also names its key beside it. */
export const STREAM_PROTOCOL = 'fanout';
const KEY_PROTOCOL_PREFIX = 'fanout.key.';

/**
 * A browser cannot give a WebSocket an `Authorization` header, and a key must
 * never be in a URL: the page names it as a second subprotocol,
 * `fanout.key.<the key in base64url>`, beside `fanout` (which the server picks).
 * Read here as the header it stands for.
 */
function keyFromProtocols(request: FastifyRequest): string | undefined {
  const offered = request.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string') return undefined;
  const named = offered
    .split(',')
    .map((protocol) => protocol.trim())
    .find((protocol) => protocol.startsWith(KEY_PROTOCOL_PREFIX));
  if (!named) return undefined;
  return `Bearer ${Buffer.from(named.slice(KEY_PROTOCOL_PREFIX.length), 'base64url').toString('utf8')}`;
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
