import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.js';
import { ManualClock } from '../src/contracts/manual-clock.js';

const keys = new ApiKeys([
  { tenant: 'acme', key: 'fk-acme' },
  { tenant: 'globex', key: 'fk-globex' },
]);
const auth = { authorization: 'Bearer fk-acme' };
const ndjson = { ...auth, 'content-type': 'application/x-ndjson' };

/**
 * One life of a server on a SQLite file. A "crash" is simply never closing it:
 * what the next life finds is what was committed, as after a kill -9.
 */
async function life(
  path: string,
  options: { latencyMs?: number; maxEndedTasks?: number; retentionMs?: number; clock?: ManualClock } = {},
) {
  const clock = options.clock ?? new ManualClock(1_000_000);
  // `m` answers after latencyMs; `sized` after 100 ms per input token, so longer prompts take longer.
  const mock = new MockProvider({
    models: {
      m: { latency: options.latencyMs ?? 0 },
      sized: { latency: { kind: 'perToken', perInputTokenMs: 100 }, outputTokens: 3 },
    },
  });
  const engine: FanoutEngine = createEngine({
    clock,
    store: new SqliteTaskStore(path),
    cache: false,
    providers: [mock],
    ...(options.maxEndedTasks ? { maxEndedTasks: options.maxEndedTasks } : {}),
  });
  await engine.recovered;
  const app = createFanoutServer({
    engine,
    keys,
    ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
  });
  await app.ready();
  return { clock, mock, engine, app };
}

/** Runs `request` while moving the manual clock on, for answers that wait on a group write or a call. */
async function settle<T>(clock: ManualClock, request: Promise<T>, stepMs = 5): Promise<T> {
  let done = false;
  void request.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    await clock.advance(stepMs);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return request;
}

const file = (): string => join(mkdtempSync(join(tmpdir(), 'fanout-restart-')), 'fanout.db');

describe('after a crash and a restart', () => {
  it('every task id answers from the store: 2,000 completed tasks, and after 50 newer ones in a small memory', async () => {
    const path = file();
    const first = await life(path, { maxEndedTasks: 50 });
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const response = await settle(
        first.clock,
        first.app.inject({
          method: 'POST',
          url: '/v1/tasks',
          headers: auth,
          payload: { model: 'mock:m', messages: [{ role: 'user', content: `task ${i}` }] },
        }),
      );
      ids.push(response.json().id);
    }
    await first.clock.advance(100);
    // Before any restart, the oldest ids are long gone from memory but answer from the store.
    const early = await first.app.inject({ method: 'GET', url: `/v1/tasks/${ids[0]}`, headers: auth });
    expect(early.json()).toMatchObject({
      id: ids[0],
      state: 'completed',
      tenant: 'acme',
      result: { finishReason: 'stop' },
    });

    const second = await life(path);
    const states = await Promise.all(
      ids.map(
        async (id) => (await second.app.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: auth })).json().state,
      ),
    );
    expect(states.filter((state) => state === 'completed')).toHaveLength(2000);
    // Still another tenant's ids answer exactly like missing ones.
    expect(
      (
        await second.app.inject({
          method: 'GET',
          url: `/v1/tasks/${ids[0]}`,
          headers: { authorization: 'Bearer fk-globex' },
        })
      ).statusCode,
    ).toBe(404);
    const events = await second.app.inject({ method: 'GET', url: `/v1/tasks/${ids[5]}/events`, headers: auth });
    expect(events.body).toMatch(/^event: acknowledged\n.*\n\nevent: response\n/s);
  });

  it('a batch cut short resumes where it stopped: its id and results answer, and no line already answered is paid for again', async () => {
    const path = file();
    const first = await life(path, { latencyMs: 1000 });
    const lines = [
      ...Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: `r${i}`, model: 'mock:m', prompt: `line ${i}` })),
      '{"model": "mock:m"',
    ].join('\n');
    const created = await settle(
      first.clock,
      first.app.inject({ method: 'POST', url: '/v1/batches', headers: ndjson, payload: lines }),
    );
    expect(created.statusCode).toBe(202);
    const { id } = created.json();
    // All ten calls start at once and end at 1,000 ms.
    await first.clock.advance(1005);
    const midway = (await first.app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: auth })).json();
    expect(midway.counts).toEqual({ completed: 10, invalid: 1 });
    expect(first.mock.stats().calls).toBe(10);

    // The same batch, cut while its calls are in flight.
    const cut = await settle(
      first.clock,
      first.app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: ndjson,
        payload: Array.from({ length: 6 }, (_, i) =>
          JSON.stringify({ id: `s${i}`, model: 'mock:m', prompt: `again ${i}` }),
        ).join('\n'),
      }),
    );
    const cutId = cut.json().id;
    await first.clock.advance(500);
    expect(first.mock.stats().calls).toBe(16);

    const second = await life(path, { latencyMs: 1000 });
    const answered = (await second.app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: auth })).json();
    expect(answered).toEqual({ id, state: 'completed', lines: 11, counts: { completed: 10, invalid: 1 } });
    const results = await second.app.inject({ method: 'GET', url: `/v1/batches/${id}/results`, headers: auth });
    const out = results.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(out.map((line) => line.custom_id)).toEqual([...Array.from({ length: 10 }, (_, i) => `r${i}`), null]);
    expect(out[10].error.code).toBe('invalid_request');

    // The cut batch: its six calls were lost with the process and run again, once each; then it completes.
    const resumed = settle(
      second.clock,
      second.app.inject({ method: 'GET', url: `/v1/batches/${cutId}/results`, headers: auth }),
      100,
    );
    const resumedLines = (await resumed).body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(resumedLines.map((line) => `${line.custom_id}:${line.fanout.state}:${line.fanout.attempts}`)).toEqual(
      Array.from({ length: 6 }, (_, i) => `s${i}:completed:2`),
    );
    expect(second.mock.stats().calls).toBe(6);
    expect((await second.app.inject({ method: 'GET', url: `/v1/batches/${cutId}`, headers: auth })).json().state).toBe(
      'completed',
    );
    expect(
      (
        await second.app.inject({
          method: 'GET',
          url: `/v1/batches/${id}`,
          headers: { authorization: 'Bearer fk-globex' },
        })
      ).statusCode,
    ).toBe(404);
  });

  it('DELETE /v1/batches/:id cancels the lines not yet ended, and says so after a restart', async () => {
    const path = file();
    const first = await life(path, { latencyMs: 60_000 });
    const created = await settle(
      first.clock,
      first.app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: ndjson,
        payload: Array.from({ length: 4 }, (_, i) => JSON.stringify({ model: 'mock:m', prompt: `slow ${i}` })).join(
          '\n',
        ),
      }),
    );
    const { id } = created.json();
    const cancelled = await first.app.inject({ method: 'DELETE', url: `/v1/batches/${id}`, headers: auth });
    expect(cancelled.json()).toEqual({ id, state: 'cancelled', lines: 4, counts: { cancelled: 4 } });
    await first.clock.advance(10);
    const second = await life(path);
    expect((await second.app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: auth })).json()).toEqual({
      id,
      state: 'cancelled',
      lines: 4,
      counts: { cancelled: 4 },
    });
    expect(second.mock.stats().calls).toBe(0);
  });

  it('removes ended tasks and batches from the store once past the retention, and nothing unfinished', async () => {
    const path = file();
    const clock = new ManualClock(1_000_000);
    const server = await life(path, { retentionMs: 3_600_000, clock });
    const done = await settle(
      clock,
      server.app.inject({
        method: 'POST',
        url: '/v1/tasks?wait=1',
        headers: auth,
        payload: { model: 'mock:m', messages: [{ role: 'user', content: 'old' }] },
      }),
    );
    const batch = (
      await settle(
        clock,
        server.app.inject({
          method: 'POST',
          url: '/v1/batches',
          headers: ndjson,
          payload: JSON.stringify({ model: 'mock:m', prompt: 'old line' }),
        }),
      )
    ).json();
    await clock.advance(3_600_000 + 60_000);
    const gone = await server.app.inject({ method: 'GET', url: `/v1/tasks/${done.json().id}`, headers: auth });
    // Memory still holds it; the store no longer does.
    expect(gone.statusCode).toBe(200);
    const reader = new SqliteTaskStore(path, { exclusive: false });
    expect([reader.get(done.json().id), reader.getRecord(batch.id)]).toEqual([undefined, undefined]);
    reader.close();
  });

  it('a pipeline run cut short goes on from the steps and calls that had ended, paying for none of them again', async () => {
    const path = file();
    const first = await life(path);
    const short = 'x';
    const long = 'y'.repeat(40);
    const pipeline = {
      inputs: ['topic'],
      steps: {
        plan: { model: 'mock:m', prompt: 'Plan {{ inputs.topic }}' },
        review: { forEach: [short, long, short, long], model: 'mock:sized', prompt: '{{ item }}', needs: ['plan'] },
        sum: { model: 'mock:m', prompt: '{{ steps.review.output }} {{ steps.plan.output }}' },
      },
    };
    const started = await settle(
      first.clock,
      first.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth,
        payload: { pipeline, inputs: { topic: 'caches' } },
      }),
      1,
    );
    expect(started.statusCode).toBe(202);
    const { id } = started.json();
    // plan ends at once; the short reviews take 800 ms, the long ones 1,700 ms: cut at 1,000 ms.
    await first.clock.advance(1000);
    expect(first.mock.stats().calls).toBe(5);

    const second = await life(path);
    const during = (await second.app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth })).json();
    expect(during.state).toBe('running');
    expect(during.steps.plan.state).toBe('completed');
    await second.clock.advance(5000);
    const view = (await second.app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth })).json();
    expect(view.state).toBe('completed');
    expect(view.steps.review.output).toHaveLength(4);
    // Only the two long reviews (cut mid-call) and the last step were called again.
    expect(second.mock.stats().calls).toBe(3);
    expect(second.mock.stats('sized').calls).toBe(2);
    const third = await life(path);
    expect((await third.app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth })).json()).toMatchObject({
      id,
      state: 'completed',
      steps: { sum: { state: 'completed' } },
    });
    expect(third.mock.stats().calls).toBe(0);
  });

  it('DELETE /v1/runs/:id cancels a run: calls in flight stop, later steps are skipped', async () => {
    const first = await life(file(), { latencyMs: 60_000 });
    const started = await settle(
      first.clock,
      first.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth,
        payload: {
          pipeline: {
            steps: { a: { model: 'mock:m', prompt: 'slow' }, b: { model: 'mock:m', prompt: '{{ steps.a.output }}' } },
          },
        },
      }),
      1,
    );
    const { id } = started.json();
    await first.clock.advance(10);
    await first.app.inject({ method: 'DELETE', url: `/v1/runs/${id}`, headers: auth });
    await first.clock.advance(10);
    const view = (await first.app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth })).json();
    expect(view).toMatchObject({
      state: 'cancelled',
      steps: { a: { state: 'failed', error: { code: 'cancelled' } }, b: { state: 'skipped' } },
    });
    expect(first.engine.inFlight).toBe(0);
  });
});
