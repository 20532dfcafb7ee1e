import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { FanoutError } from '../../contracts/errors.js';
import { send } from '../http-errors.js';

/** The page's files, built by `npm run build` (scripts/build-dashboard.mjs) into dist/dashboard. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** The page runs only its own files and talks only to this server. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/** Where the built page is: dist/dashboard of the package this module belongs to. */
function dashboardDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    if (existsSync(join(dir, 'package.json'))) {
      const built = join(dir, 'dist', 'dashboard');
      return existsSync(join(built, 'index.html')) ? built : undefined;
    }
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * The dashboard: `GET /` and its files under `/dashboard/`. The page holds no
 * data: it signs in with an API key kept in the browser tab's session, and
 * reads the signed-in tenant's figures over the WebSocket at /v1/stream.
 */
export function registerDashboardRoutes(app: FastifyInstance): void {
  const dir = dashboardDir();
  const cache = new Map<string, Buffer>();
  const file = (name: string): Buffer | undefined => {
    if (!dir || !Object.hasOwn(FILES, name)) return undefined;
    let body = cache.get(name);
    if (!body) cache.set(name, (body = readFileSync(join(dir, name))));
    return body;
  };
  const serve = (name: string) => async (_request: unknown, reply: import('fastify').FastifyReply) => {
    if (!Object.hasOwn(FILES, name))
      return send(reply, new FanoutError('not_found', `no dashboard file ${name.slice(0, 100)}`));
    const body = file(name);
    if (!body) return send(reply, new FanoutError('not_found', 'the dashboard is not built: run npm run build'));
    return reply
      .header('content-type', FILES[name])
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(body);
  };
  app.get('/', serve('index.html'));
  app.get('/dashboard/:file', async (request, reply) =>
    serve((request.params as { file: string }).file)(request, reply),
  );
}

/** Paths anyone may load: the page and its files, which hold no data. */
export function isDashboardAsset(path: string): boolean {
  return path === '/' || (path.startsWith('/dashboard/') && Object.hasOwn(FILES, path.slice('/dashboard/'.length)));
}
