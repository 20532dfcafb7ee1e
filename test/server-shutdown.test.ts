import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { shutDownServer } from '../src/server/shutdown.js';
import { MemoryTaskStore } from '../src/store/memory/memory-task-store.js';
import { ManualClock } from '../src/testing/manual-clock.js';

/** A server whose one mock model answers 10 s after it is called, on a manual clock. */
async function serverWithSlowModel() {
  const clock = new ManualClock();
  const store = new MemoryTaskStore();
  const engine = createEngine({ clock, store, cache: false, providers: [new MockProvider({ models: { slow: { latency: 10_000 } } })] });
  const app = createFanoutServer({ engine, keys: new ApiKeys([]) });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  // A waiting request holds its connection open until the task ends.
  const response = fetch(`${address}/v1/tasks?wait=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock:slow', messages: [{ role: 'user', content: 'hi' }] }),
  });
  void response.catch(() => {});
  while (clock.nextTimerAt() === undefined) await new Promise((resolve) => setImmediate(resolve));
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
    await expect(response).rejects.toThrow();
    // What the next start on this store finds: the call cut off, to be run again.
    const found = await store.recover(clock.now());
    expect(found.map((row) => row.request.model)).toEqual(['mock:slow']);
  });

  it('skips the rest of the grace period when told to stop now', async () => {
    const { clock, engine, app, response } = await serverWithSlowModel();
    let now = (): void => {};
    const stopped = shutDownServer(app, engine, { graceMs: 60_000, clock, now: new Promise((resolve) => (now = resolve)) });
    now();
    expect(await stopped).toEqual({ forced: true });
    await expect(response).rejects.toThrow();
    expect(clock.now()).toBe(0);
  });
});
