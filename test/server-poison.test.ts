import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { ValidationError } from '../src/contracts/errors.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { MemoryTaskStore } from '../src/store/memory/memory-task-store.js';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.js';
import type { TaskRow, TaskStore, WriteOutcome } from '../src/contracts/task-store.js';

const keys = new ApiKeys([{ tenant: 'acme', key: 'fk-acme' }]);
const auth = { authorization: 'Bearer fk-acme' };
const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'mock:m',
  messages: [{ role: 'user', content }],
  ...extra,
});

/** The same, as JSON text (JSON.stringify itself cannot write it). */
const nestedJson = (depth: number): string => `${'{"a":'.repeat(depth - 1)}{"leaf":true}${'}'.repeat(depth - 1)}`;

/** `{ a: { a: { ... } } }`, `depth` objects deep. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

/** Log lines a server wrote, parsed. */
function logSink(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const opened: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
});

function serve(
  store: TaskStore,
  logger?: pino.Logger,
): { engine: FanoutEngine; app: ReturnType<typeof createFanoutServer> } {
  const engine = createEngine({
    store,
    cache: { ttlMs: 60_000 },
    providers: [new MockProvider({ models: { m: { latency: 0 } } })],
  });
  const app = createFanoutServer({
    engine,
    keys,
    metricsKeys: new ApiKeys([{ tenant: 'operator', key: 'fk-operator' }]),
    ...(logger ? { logger } : {}),
  });
  opened.push(store, engine, app);
  return { engine, app };
}

describe('a request that cannot be stored', () => {
  it('is refused before it is accepted, and every task after it is written to the SQLite file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fanout-poison-')), 'fanout.db');
    const { engine, app } = serve(new SqliteTaskStore(path));
    for (const extra of [{}, { temperature: 0 }]) {
      const payload = JSON.stringify(ask('deep', { providerOptions: { deep: '@' }, ...extra })).replace(
        '"@"',
        nestedJson(5000),
      );
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: { ...auth, 'content-type': 'application/json' },
        payload,
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toMatch(/nested more than 64 levels deep/);
    }
    expect(engine.pendingCount).toBe(0);
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const accepted = await app.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: auth,
        payload: ask(`after ${i}`),
      });
      expect(accepted.statusCode).toBe(202);
      ids.push(accepted.json().id);
    }
    await engine.idle();
    await engine.flush();
    // A second connection to the file sees every one of them, completed.
    const reader = new SqliteTaskStore(path, { exclusive: false });
    opened.push(reader);
    expect(ids.map((id) => reader.get(id)?.state)).toEqual(ids.map(() => 'completed'));
    expect(engine.storeHealth()).toEqual({ ok: true });
  });

  it('is refused in a batch line and a WebSocket message too, naming where', async () => {
    const { app } = serve(new MemoryTaskStore());
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const socket = new WebSocket(`${address.replace('http', 'ws')}/v1/stream`, { headers: auth });
    await new Promise((resolve) => socket.once('open', resolve));
    const reply = new Promise<Record<string, unknown>>((resolve) =>
      socket.once('message', (data) => resolve(JSON.parse(String(data)))),
    );
    socket.send(
      `{"type":"submit","request":${JSON.stringify(ask('x')).replace('}', `,"providerOptions":${nestedJson(5000)}}`)}}`,
    );
    expect(await reply).toEqual({
      type: 'error',
      error: { code: 'invalid_request', message: '(root): nested more than 64 levels deep' },
    });
    socket.close();
    const line = JSON.stringify({ model: 'mock:m', prompt: 'x', max_tokens: 5, extra: nested(100) });
    const batch = await app.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { ...auth, 'content-type': 'application/x-ndjson' },
      payload: `${line}\n${JSON.stringify({ model: 'mock:m', prompt: 'fine' })}\n`,
    });
    expect(batch.statusCode).toBe(202);
    const results = await app.inject({ method: 'GET', url: `/v1/batches/${batch.json().id}/results`, headers: auth });
    const [first, second] = results.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(first.error.message).toBe('line 1: (root): nested more than 64 levels deep');
    expect(second.fanout.state).toBe('completed');
  });

  it('in the library: providerOptions nested too deep, or referring to itself, is a ValidationError at submit', () => {
    const engine = createEngine({ cache: false });
    opened.push(engine);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const providerOptions of [nested(100), circular]) {
      expect(() => engine.submit(ask('x', { providerOptions }) as never)).toThrow(ValidationError);
    }
    expect(() => engine.submit(ask('x', { providerOptions: nested(100) }) as never)).toThrow(
      'providerOptions: nested more than 64 levels deep',
    );
    expect(engine.pendingCount).toBe(0);
  });

  it('fails alone when its row cannot be serialised; the other rows of the same write are stored', async () => {
    const store = new MemoryTaskStore();
    const engine = createEngine({
      store,
      cache: false,
      providers: [new MockProvider({ models: { m: { latency: 0 } } })],
    });
    opened.push(engine);
    const good = engine.submit(ask('good') as never);
    // JSON cannot hold a BigInt: this row can never be written.
    const bad = engine.submit(ask('bad', { providerOptions: { budget: 10n } }) as never);
    const other = engine.submit(ask('other') as never);
    await engine.flush();
    await expect(bad.result()).rejects.toMatchObject({
      code: 'invalid_request',
      message: expect.stringMatching(/could not be stored/),
    });
    await Promise.all([good.result(), other.result()]);
    await engine.flush();
    expect([store.get(good.id)?.state, store.get(bad.id), store.get(other.id)?.state]).toEqual([
      'completed',
      undefined,
      'completed',
    ]);
    expect(engine.storeHealth().ok).toBe(true);
  });
});

/** A store whose writes fail while `failing` is set, as a full disk's would. */
class FlakyStore extends MemoryTaskStore {
  failing = false;
  override write(rows: readonly TaskRow[], now: number): WriteOutcome {
    if (this.failing) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    return super.write(rows, now);
  }
}

describe('a failing store', () => {
  it('is loud: one log line, /readyz not ready, a metric; and ready again once writes succeed', async () => {
    const store = new FlakyStore();
    const sink = logSink();
    const { engine, app } = serve(store, sink.logger);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    store.failing = true;
    for (let i = 0; i < 3; i++) {
      await app.inject({ method: 'POST', url: '/v1/tasks?wait=1', headers: auth, payload: ask(`during ${i}`) });
      await engine.flush();
    }
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      ready: false,
      store: { ok: false, error: { code: 'io_error', message: expect.stringMatching(/disk is full/) } },
    });
    const metrics = (
      await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer fk-operator' } })
    ).body;
    expect(metrics).toMatch(/fanout_store_errors_total\{code="io_error"\} [1-9]/);
    expect(metrics).toMatch(/fanout_store_ok 0/);
    sink.logger.flush();
    expect(sink.lines().filter((line) => line.msg === 'task store write failed')).toHaveLength(1);
    store.failing = false;
    await engine.flush();
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    // Nothing accepted while the store failed was lost: the writes that failed are made once it works.
    expect(store.recover(0)).toEqual([]);
    expect(engine.storeHealth()).toEqual({ ok: true });
  });

  it('a fault of the server is logged with its cause, and the client sees only "internal error"', async () => {
    const sink = logSink();
    const { app } = serve(new MemoryTaskStore(), sink.logger);
    app.get('/v1/boom', async () => {
      throw new Error('the cause of the fault');
    });
    const response = await app.inject({ method: 'GET', url: '/v1/boom', headers: auth });
    expect(response.statusCode).toBe(500);
    expect(response.json().error.message).toBe('internal error');
    sink.logger.flush();
    const line = sink.lines().find((l) => l.msg === 'request failed');
    expect(line?.err).toMatchObject({
      message: 'the cause of the fault',
      stack: expect.stringMatching(/server-poison\.test/),
    });
  });
});

describe('providerOptions', () => {
  it('may not change the model, messages, token ceilings or n that the limits charged for; each is named and nothing is called', async () => {
    const mock = new MockProvider({ models: { m: { latency: 0 } } });
    const engine = createEngine({ cache: false, providers: [mock] });
    const app = createFanoutServer({ engine, keys });
    opened.push(engine, app);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: auth,
      payload: ask('x', {
        providerOptions: { model: 'gpt-4-32k-EXPENSIVE', max_tokens: 100000, n: 128, messages: [], user: 'fine' },
      }),
    });
    expect(response.statusCode).toBe(400);
    const message: string = response.json().error.message;
    for (const field of ['model', 'max_tokens', 'n', 'messages'])
      expect(message).toContain(`providerOptions.${field}: may not be set here`);
    expect(message).not.toContain('providerOptions.user');
    expect(mock.stats().calls).toBe(0);
    const allowed = await app.inject({
      method: 'POST',
      url: '/v1/tasks?wait=1',
      headers: auth,
      payload: ask('x', { providerOptions: { user: 'u-1' } }),
    });
    expect(allowed.json().state).toBe('completed');
  });
});
