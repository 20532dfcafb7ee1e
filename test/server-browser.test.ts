import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

// A server without keys on loopback, as `fanout serve` runs by default: what may a web page in the user's browser make it do?
let engine: FanoutEngine;
let mock: MockProvider;
let app: ReturnType<typeof createFanoutServer>;
let address: string;

beforeAll(async () => {
  mock = new MockProvider({ models: { m: { latency: 0 } } });
  engine = createEngine({ cache: false, providers: [mock] });
  app = createFanoutServer({ engine, keys: new ApiKeys() });
  address = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  await engine.close();
});

const line = JSON.stringify({ model: 'mock:m', prompt: 'spend the operator’s money' });
const port = (): string => new URL(address).port;

describe('a server without keys refuses what a web page could send', () => {
  it('a cross-site text/plain POST (no CORS preflight) calls nothing', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { host: `127.0.0.1:${port()}`, 'content-type': 'text/plain', origin: 'https://evil.example' },
      payload: line,
    });
    expect(response.statusCode).toBe(403);
    const noOrigin = await app.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { host: `127.0.0.1:${port()}`, 'content-type': 'text/plain' },
      payload: line,
    });
    expect([noOrigin.statusCode, noOrigin.json().error.message]).toEqual([
      403,
      'content-type text/plain: a server without API keys takes only application/json or application/x-ndjson bodies',
    ]);
    const form = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { host: `localhost:${port()}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=b',
    });
    expect(form.statusCode).toBe(403);
    expect(mock.stats().calls).toBe(0);
  });

  it('a request under a foreign Host name (DNS rebinding) is refused, the WebSocket included', async () => {
    const rebound = await app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { host: `rebound.example:${port()}` },
    });
    expect([rebound.statusCode, rebound.json().error.code]).toEqual([403, 'forbidden']);
    const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`, {
      headers: { host: `rebound.example:${port()}`, origin: `http://rebound.example:${port()}` },
    });
    const status = await new Promise<number | undefined>((resolve) => {
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode));
      socket.on('open', () => resolve(101));
    });
    expect(status).toBe(403);
  });

  it('a page of another origin may not use it, even under the loopback Host', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { host: `127.0.0.1:${port()}`, origin: 'http://localhost:3000', 'content-type': 'application/json' },
      payload: JSON.stringify({ model: 'mock:m', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(response.statusCode).toBe(403);
    expect(mock.stats().calls).toBe(0);
  });

  it('still serves its own clients: loopback names, JSON bodies, its own origin', async () => {
    for (const host of [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`]) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/tasks?wait=1',
        headers: { host, 'content-type': 'application/json' },
        payload: JSON.stringify({ model: 'mock:m', messages: [{ role: 'user', content: host }] }),
      });
      expect(response.statusCode).toBe(200);
    }
    const own = await app.inject({
      method: 'GET',
      url: '/healthz?probe=1',
      headers: { host: `rebound.example:${port()}` },
    });
    expect(own.statusCode).toBe(200);
    const batch = await fetch(`${address}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', origin: address },
      body: `${line}\n`,
    });
    expect(batch.status).toBe(202);
  });
});
