import { afterEach, describe, expect, inject, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../create-engine.js';
import { SystemClock } from '../contracts/clock.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { RedisTaskStore } from '../store/redis/redis-task-store.js';
import { QueuedTasks } from './queued-tasks.js';
import { TaskQueue } from './task-queue.js';

/**
 * Tasks handed to the workers of a Redis and followed from another process
 * (`fanout serve --redis`), against a real Redis. Each test has key prefixes
 * of its own.
 */
const url = () => `${inject('redisUrl')}/12`;
let prefixes = 0;

interface Side {
  queue: TaskQueue;
  store: RedisTaskStore;
  close(): Promise<void>;
}

/** A queue and store under `prefix`, as each process of one Redis has its own. */
function side(prefix: string): Side {
  const store = new RedisTaskStore({ url: url(), prefix });
  const queue = new TaskQueue({ url: url(), store, prefix });
  return { queue, store, close: async () => (await queue.close(), await store.close()) };
}

/** A worker on `prefix`'s queue: an engine with a mock model of `latency` ms, and what its upstream saw. */
function worker(prefix: string, latency: number): Side & { engine: FanoutEngine; mock: MockProvider } {
  const parts = side(prefix);
  const mock = new MockProvider({ models: { m: { latency } } });
  const engine = createEngine({ providers: [mock], store: parts.store, resume: false, cache: false });
  parts.queue.work(engine, { concurrency: 4 });
  return {
    ...parts,
    engine,
    mock,
    close: async () => {
      await parts.queue.close();
      await engine.close();
      await parts.store.close();
    },
  };
}

function accepting(prefix: string): Side & { tasks: QueuedTasks } {
  const parts = side(prefix);
  const tasks = new QueuedTasks({ queue: parts.queue, store: parts.store, clock: new SystemClock() });
  return {
    ...parts,
    tasks,
    close: async () => {
      tasks.close();
      await parts.close();
    },
  };
}

const ask = (content: string) => ({ model: 'mock:m', messages: [{ role: 'user' as const, content }] });

const open: Side[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('QueuedTasks', () => {
  it('runs a task on a worker and tells its events and end to the process that accepted it', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = accepting(prefix);
    const there = worker(prefix, 50);
    open.push(here, there);
    await here.tasks.ready;
    const handle = here.tasks.submit(ask('hello'));
    const seen: string[] = [];
    here.tasks.onTask(handle.id, (event) => seen.push(event.type));
    const result = await handle.result();
    expect(result.text.length).toBeGreaterThan(0);
    expect(handle.status()).toMatchObject({ state: 'completed', result });
    expect(seen).toContain('task-started');
    expect(seen.at(-1)).toBe('task-completed');
    expect(there.mock.stats('m').calls).toBe(1);
  });

  it('cancels a task no worker has taken: it ends at once, and no worker calls the model for it', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = accepting(prefix);
    open.push(here);
    await here.tasks.ready;
    const handle = here.tasks.submit(ask('never run'));
    expect(await here.tasks.cancel(handle.id)).toBe(true);
    expect(handle.status().state).toBe('cancelled');
    await expect(handle.result()).rejects.toMatchObject({ code: 'cancelled' });
    expect((await here.store.get(handle.id))?.state).toBe('cancelled');
    const there = worker(prefix, 0);
    open.push(there);
    const other = here.tasks.submit(ask('run after it'));
    await other.result();
    // The worker took the cancelled task's job too (it was queued first) and found it ended.
    expect(there.mock.stats('m').calls).toBe(1);
    expect(await here.tasks.cancel(handle.id)).toBe(false);
  });

  it('follows a task it did not accept, whose events it never heard, to its end from the store', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const first = accepting(prefix);
    const there = worker(prefix, 0);
    open.push(first, there);
    await first.tasks.ready;
    const handle = first.tasks.submit(ask('ended before the second listened'));
    const result = await handle.result();
    const second = accepting(prefix);
    open.push(second);
    expect(second.tasks.status(handle.id)).toBeUndefined();
    expect((await second.tasks.find(handle.id))?.state).toBe('completed');
    expect(await second.tasks.result(handle.id)).toEqual(result);
    await expect(second.tasks.result('t_missing')).rejects.toMatchObject({ code: 'unknown_task' });
  });

  it('submits once under an id: a second submit of the id follows the first task, and the model is called once', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = accepting(prefix);
    const there = worker(prefix, 20);
    open.push(here, there);
    await here.tasks.ready;
    const first = await here.tasks.submitOnce(ask('once'), { id: 'run_1:step:mock:m' });
    await first.result();
    const elsewhere = accepting(prefix);
    open.push(elsewhere);
    const again = await elsewhere.tasks.submitOnce(ask('once'), { id: 'run_1:step:mock:m' });
    expect(await again.result()).toEqual(await first.result());
    expect(there.mock.stats('m').calls).toBe(1);
  });

  it('ends what it follows as closed when its queue closes, with no rejection left unhandled', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = accepting(prefix);
    await here.tasks.ready;
    const handles = [0, 1, 2].map((i) => here.tasks.submit(ask(`left queued ${i}`)));
    await here.tasks.written();
    const ends = handles.map((h) =>
      h.result().then(
        () => 'completed',
        (error: { code: string }) => error.code,
      ),
    );
    await here.close();
    expect(await Promise.all(ends)).toEqual(['engine_closed', 'engine_closed', 'engine_closed']);
    expect(handles.map((h) => h.status().state)).toEqual(['failed', 'failed', 'failed']);
  });
});

describe('TaskQueue.requeueStranded', () => {
  const row = (id: string, queued: boolean | undefined, submittedAt: number) => ({
    id,
    seq: submittedAt * 1000,
    key: 'mock:m',
    request: ask(id),
    state: 'queued' as const,
    submittedAt,
    readyAt: 0,
    attempts: [],
    queuedMs: 0,
    rateLimitedMs: 0,
    providerMs: 0,
    ...(queued === undefined ? {} : { queued }),
  });

  it('queues again a task a queue kept but never queued, and no task an engine keeps for itself or one already queued', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = side(prefix);
    open.push(here);
    const now = Date.now();
    // Kept a minute and more ago: one by a queue that stopped before queueing it, one by an engine for itself.
    await here.store.write([row('t_stranded', true, now - 61_000), row('t_engine', undefined, now - 61_000)], now);
    // Kept by a queue just now: its process may be queueing it at this moment.
    await here.store.write([row('t_recent', true, now)], now);
    const [queuedNormally] = await here.queue.submit([ask('queued normally')]);
    expect(await here.queue.requeueStranded({ olderThanMs: 60_000 })).toBe(1);
    expect(await here.queue.requeueStranded({ olderThanMs: 60_000 })).toBe(0);
    const there = worker(prefix, 0);
    open.push(there);
    expect((await here.queue.ended('t_stranded')).state).toBe('completed');
    expect((await here.queue.ended(queuedNormally as string)).state).toBe('completed');
    expect((await here.store.get('t_engine'))?.state).toBe('queued');
    expect((await here.store.get('t_recent'))?.state).toBe('queued');
    expect(there.mock.stats('m').calls).toBe(2);
  });
});

describe('TaskQueue.written', () => {
  it('says false when a task queued with it could not be kept, even once its end was read', async () => {
    const prefix = `qt${prefixes++}-${Date.now()}:`;
    const here = side(prefix);
    open.push(here);
    // A value JSON cannot hold: its row cannot be written, so that task alone fails.
    const poison = {
      toJSON: () => {
        throw new Error('not JSON');
      },
    };
    const good = here.queue.enqueue(ask('kept'));
    const bad = here.queue.enqueue({ ...ask('not kept'), providerOptions: { poison } });
    // Its end is read first: reading it forgets the failure, which must not make `written` say true.
    const end = here.queue.ended(bad.id).then(
      () => 'ended',
      (error: Error) => error.message,
    );
    expect(await here.queue.written()).toBe(false);
    expect(await end).toMatch(/cannot be kept/);
    expect((await here.store.get(good.id))?.state).toBe('queued');
    expect(await here.queue.written()).toBe(true);
  });
});
