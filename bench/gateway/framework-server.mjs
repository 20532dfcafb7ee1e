// The gateway's request path on two HTTP frameworks, to choose between them
// by measurement: Fastify 5, and Hono 4 on @hono/node-server. Both do the
// same work per request: check the API key, parse and validate the body into a
// fanout request, run it through the same engine (limits, accounting, retries)
// to the upstream, and answer in OpenAI's format. Nothing else differs.
// Usage: node framework-server.mjs fastify|hono --upstream http://127.0.0.1:PORT
// Prints its port on stdout.
import { serve } from '@hono/node-server';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { requestFromChatBody } from '../../dist/openai/wire.js';
import { chatCompletion } from '../../dist/batch/output-line.js';
import { FanoutError } from '../../dist/contracts/errors.js';
import { createEngine } from '../../dist/create-engine.js';
import { OpenAiCompatibleProvider } from '../../dist/providers/openai-compatible/openai-provider.js';
import { ApiKeys } from '../../dist/server/api-keys.js';
import { httpError } from '../../dist/server/http-errors.js';

const framework = process.argv[2];
const upstream = process.argv[process.argv.indexOf('--upstream') + 1];
const engine = createEngine({
  cache: false,
  concurrency: 4096,
  providers: [new OpenAiCompatibleProvider({ name: 'up', apiKey: 'sk-bench', baseURL: `${upstream}/v1` })],
  models: { 'up:m': { limits: { requestsPerMinute: 6_000_000, tokensPerMinute: 6_000_000_000 } } },
});
const keys = new ApiKeys([{ tenant: 'bench', key: 'fk-bench' }]);

/** The shared request path: JSON body in, [status, JSON body] out. */
async function complete(authorization, body) {
  try {
    const tenant = keys.tenantOf(authorization);
    if (tenant === undefined) throw new FanoutError('auth', 'a valid API key is needed');
    const { includeUsage: _, choices: __, ...task } = requestFromChatBody(body);
    const handle = engine.submit({ ...task, tenant }, { durable: false });
    await handle.result();
    return [200, chatCompletion(handle.status())];
  } catch (error) {
    const { status, body: answer } = httpError(error);
    return [status, answer];
  }
}

let port;
if (framework === 'fastify') {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  app.post('/v1/chat/completions', async (request, reply) => {
    const [status, body] = await complete(request.headers.authorization, request.body);
    return reply.code(status).send(body);
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  port = new URL(address).port;
} else if (framework === 'hono') {
  const app = new Hono();
  app.post('/v1/chat/completions', async (c) => {
    let body;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: { code: 'invalid_request', message: 'the body is not JSON' } }, 400);
    }
    const [status, answer] = await complete(c.req.header('authorization'), body);
    return c.json(answer, status);
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  port = server.address().port;
} else {
  throw new Error(`unknown framework ${framework}: expected fastify or hono`);
}
process.stdout.write(`${port}\n`);
