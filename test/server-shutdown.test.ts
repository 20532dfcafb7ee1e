import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { shutDownServer } from '../src/server/shutdown.js';
import { MemoryTaskStore } from '../src/store/memory/memory-task-store.js';
import { ManualClock } from '../src/contracts/manual-clock.js';

/** A server whose one mock model answers 10 s after it is called, on a manual clock. */
async function serverWithSlowModel() {
  const clock = new ManualClock();
  const store = new MemoryTaskStore();
  const engine = createEngine({
    clock,
    store,
    cache: false,
    providers: [new MockProvider({ models: { slow: { latency: 10_000 } } })],
  });
  const app = createFanoutServer({ engine, keys: new ApiKeys([]) });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  // A waiting request holds its connection open until the task ends.
  const response = fetch(`${address}/v1/tasks?wait=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock:slow', messages: [{ role: 'user', content: 'hi' }] }),
  });
  void response.catch(() => {});
  while (engine.inFlight === 0) await new Promise((resolve) => setImmediate(resolve));
  return { clock, store, engine, app, address, response };
}

describe('server shutdown', () => {
  it('lets a request in progress finish within the grace period, then stops', async () => {
    const { clock, engine, app, response } = await serverWithSlowModel();
    const stopped = shutDownServer(app, engine, { graceMs: 30_000, clock });
    await clock.advance(10_000);
    const answered = await response;
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as { state: string }).state).toBe('completed');
    expect(await stopped).toEqual({ forced: false });
  });

  it('lets a streamed completion in progress finish too', async () => {
    const { clock, engine, app, address, response } = await serverWithSlowModel();
    const streamed = fetch(`${address}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock:slow', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
    });
    while (engine.pendingCount < 2) await new Promise((resolve) => setImmediate(resolve));
    const stopped = shutDownServer(app, engine, { graceMs: 30_000, clock });
    await clock.advance(10_000);
    expect((await response).status).toBe(200);
    const text = await (await streamed).text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await stopped).toEqual({ forced: false });
  });

  it('closes what is still open when the grace period ends, and the unfinished task stays stored', async () => {
    const { clock, store, engine, app, response } = await serverWithSlowModel();
    let done = false;
    const stopped = shutDownServer(app, engine, { graceMs: 5_000, clock }).then((report) => {
      done = true;
      return report;
    });
    await clock.advance(4_999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(await stopped).toEqual({ forced: true });
    // The waiting client is told to come back for the task, not cut off.
    expect((await response).status).toBe(503);
    // What the next start on this store finds: the call cut off, to be run again.
    const found = await store.recover(clock.now());
    expect(found.map((row) => row.request.model)).toEqual(['mock:slow']);
  });

  it('ends every stream still open at the end of the grace period with a final message', async () => {
    const { clock, engine, app, address, response } = await serverWithSlowModel();
    const post = (path: string, body: unknown) =>
      fetch(`${address}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ask = { model: 'mock:slow', messages: [{ role: 'user', content: 'still going' }] };
    const gateway = post('/v1/chat/completions', { ...ask, stream: true });
    const plainGateway = post('/v1/chat/completions', ask);
    // The task is acknowledged once stored, by the next group write on the (manual) clock.
    const posting = post('/v1/tasks', ask);
    let posted = false;
    void posting.then(() => (posted = true));
    while (!posted) {
      await clock.advance(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { id } = (await (await posting).json()) as { id: string };
    const sse = fetch(`${address}/v1/tasks/${id}/events`);
    const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`);
    const messages: Array<Record<string, unknown>> = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<[number, string]>((resolve) =>
      socket.on('close', (code, reason) => resolve([code, String(reason)])),
    );
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'subscribe', task: id }));
    while (messages.length === 0 || engine.pendingCount < 4) await new Promise((resolve) => setImmediate(resolve));
    const sseResponse = await sse;
    const stopped = shutDownServer(app, engine, { graceMs: 5_000, clock });
    await clock.advance(5_000);
    expect(await stopped).toEqual({ forced: true });

    const waited = await response;
    expect(waited.status).toBe(503);
    expect(await waited.json()).toMatchObject({
      id: expect.any(String),
      state: 'processing',
      error: { code: 'server_shutting_down' },
    });
    const plain = await plainGateway;
    expect([plain.status, ((await plain.json()) as { error: { code: string } }).error.code]).toEqual([
      503,
      'server_shutting_down',
    ]);
    const chunks = await (await gateway).text();
    expect(chunks).toMatch(/data: \{"error":\{"code":"server_shutting_down"/);
    expect(chunks.trimEnd().endsWith('data: [DONE]')).toBe(true);
    const events = await sseResponse.text();
    expect(events).toMatch(
      /event: error\ndata: \{"id":"[^"]+","state":"processing","error":\{"code":"server_shutting_down"/,
    );
    expect(await closed).toEqual([1001, 'server shutting down']);
  });

  it('closes an idle WebSocket (1001) as soon as the shutdown starts', async () => {
    const { clock, engine, app, address } = await serverWithSlowModel();
    const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`);
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<[number, string]>((resolve) =>
      socket.on('close', (code, reason) => resolve([code, String(reason)])),
    );
    const stopped = shutDownServer(app, engine, { graceMs: 30_000, clock });
    expect(await closed).toEqual([1001, 'server shutting down']);
    await clock.advance(10_000);
    expect(await stopped).toEqual({ forced: false });
  });

  it('skips the rest of the grace period when told to stop now', async () => {
    const { clock, engine, app, response } = await serverWithSlowModel();
    let now = (): void => {};
    const stopped = shutDownServer(app, engine, {
      graceMs: 60_000,
      clock,
      now: new Promise((resolve) => (now = resolve)),
    });
    now();
    expect(await stopped).toEqual({ forced: true });
    expect((await response).status).toBe(503);
    expect(clock.now()).toBe(0);
  });
});
