import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import type { ConnectionLimits } from '../src/server/connections.js';
import { createFanoutServer } from '../src/server/server.js';

const keys = new ApiKeys([
  { tenant: 'acme', key: 'fk-acme' },
  { tenant: 'globex', key: 'fk-globex' },
]);
const closers: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function serve(
  connections: ConnectionLimits,
): Promise<{ port: number; address: string; engine: ReturnType<typeof createEngine> }> {
  const engine = createEngine({
    cache: false,
    providers: [new MockProvider({ models: { slow: { latency: 60_000 }, quick: { latency: 0 } } })],
  });
  const app = createFanoutServer({ engine, keys, connections });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(
    () => engine.close(),
    () => app.close(),
    () => app.server.closeAllConnections(),
  );
  return { port: Number(new URL(address).port), address, engine };
}

/** A raw connection and everything it receives until the server closes it. */
function rawConnection(port: number): { socket: Socket; received: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  closers.push(() => socket.destroy());
  const received = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  return { socket, received };
}

describe('connections', () => {
  it('a request whose body never finishes arriving is answered 408 and closed, key or no key', async () => {
    const { port, address } = await serve({ requestTimeoutMs: 300, headersTimeoutMs: 200 });
    const slowBody = rawConnection(port);
    slowBody.socket.write(
      'POST /v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer fk-acme\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":',
    );
    // Without a key the answer is 401 at once; the upload still cannot hold its socket.
    const slowBodyNoKey = rawConnection(port);
    slowBodyNoKey.socket.write(
      'POST /v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":',
    );
    const slowHeaders = Array.from({ length: 50 }, () => rawConnection(port));
    for (const { socket } of slowHeaders) socket.write('POST /v1/batches HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
    expect(await slowBody.received).toMatch(/^HTTP\/1\.1 408/);
    expect(await slowBodyNoKey.received).toMatch(/^HTTP\/1\.1 401/);
    const answers = await Promise.all(slowHeaders.map(({ received }) => received));
    expect(answers.every((text) => text === '' || text.startsWith('HTTP/1.1 408'))).toBe(true);
    expect((await fetch(`${address}/healthz`)).status).toBe(200);
  });

  it('a connection past the cap is answered 503 naming it, and health checks work again once others close', async () => {
    const { port, address } = await serve({ maxConnections: 20 });
    const idle = Array.from({ length: 20 }, () => rawConnection(port));
    await Promise.all(idle.map(({ socket }) => new Promise((resolve) => socket.once('connect', resolve))));
    // Let the server see all twenty before the next.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = rawConnection(port);
    const text = await refused.received;
    expect(text).toMatch(/^HTTP\/1\.1 503 Service Unavailable/);
    expect(text).toContain('the server holds its maximum of 20 connections');
    for (const { socket } of idle.slice(0, 5)) socket.destroy();
    await Promise.all(idle.slice(0, 5).map(({ received }) => received));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await fetch(`${address}/healthz`)).status).toBe(200);
  });

  it('one tenant holds at most its share of open streams and waits; another tenant is unaffected', async () => {
    const { address } = await serve({ maxStreamsPerTenant: 3 });
    const submit = async (key: string) =>
      (
        (await (
          await fetch(`${address}/v1/tasks`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock:slow', messages: [{ role: 'user', content: 'x' }] }),
          })
        ).json()) as { id: string }
      ).id;
    const id = await submit('fk-acme');
    const controllers: AbortController[] = [];
    const open = (key: string, taskId: string) => {
      const controller = new AbortController();
      controllers.push(controller);
      closers.push(() => controller.abort());
      return fetch(`${address}/v1/tasks/${taskId}/events`, {
        headers: { authorization: `Bearer ${key}` },
        signal: controller.signal,
      });
    };
    const held = await Promise.all([open('fk-acme', id), open('fk-acme', id), open('fk-acme', id)]);
    expect(held.map((r) => r.status)).toEqual([200, 200, 200]);
    const fourth = await open('fk-acme', id);
    expect(fourth.status).toBe(429);
    expect(((await fourth.json()) as { error: { message: string } }).error.message).toBe(
      'tenant acme already holds 3 streams, sockets and waits open; close one first',
    );
    const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`, {
      headers: { authorization: 'Bearer fk-acme' },
    });
    expect(await new Promise((resolve) => socket.on('close', (code) => resolve(code)))).toBe(1013);
    const other = await open('fk-globex', await submit('fk-globex'));
    expect(other.status).toBe(200);
    // A stream that closes gives its place back.
    controllers[0]?.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await open('fk-acme', id)).status).toBe(200);
  });

  it('idle sockets following their own tasks hear nothing of a batch of other tasks, and none listens to every event', async () => {
    const { address, engine } = await serve({});
    const everything = vi.spyOn(engine, 'on');
    const sockets = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`, {
          headers: { authorization: 'Bearer fk-acme' },
        });
        closers.push(() => socket.terminate());
        const heard: Array<Record<string, unknown>> = [];
        socket.on('message', (data) => heard.push(JSON.parse(String(data))));
        await new Promise((resolve) => socket.once('open', resolve));
        socket.send(
          JSON.stringify({
            type: 'submit',
            request: { model: 'mock:slow', messages: [{ role: 'user', content: 'wait' }] },
          }),
        );
        while (heard.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        return heard;
      }),
    );
    const lines = Array.from({ length: 2_000 }, (_, i) =>
      JSON.stringify({ model: 'mock:quick', prompt: `line ${i}` }),
    ).join('\n');
    const batch = (await (
      await fetch(`${address}/v1/batches`, {
        method: 'POST',
        headers: { authorization: 'Bearer fk-acme', 'content-type': 'application/x-ndjson' },
        body: lines,
      })
    ).json()) as { id: string };
    await (
      await fetch(`${address}/v1/batches/${batch.id}/results`, { headers: { authorization: 'Bearer fk-acme' } })
    ).text();
    for (const heard of sockets) {
      const own = heard[0]?.task;
      expect(heard.every((message) => message.task === own)).toBe(true);
    }
    expect(everything).not.toHaveBeenCalledWith('*', expect.anything());
  });
});
