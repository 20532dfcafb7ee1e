import { Queue, QueueEvents, Worker } from 'bullmq';
import { createEngine, MockProvider, SystemClock } from '../dist/index.js';
import { TaskQueue } from '../dist/queue/index.js';
import { RedisCacheStore, RedisLimiter, RedisTaskStore } from '../dist/store/redis/index.js';
import { startRedisServer } from '../test/redis-server.js';

/**
 * R-queue: tasks per second through the Redis queue, from submission to the
 * last outcome read back, with 1, 2 and 4 workers (each an engine of its own
 * on the Redis task store, cache and limiter, 64 tasks at once, on a
 * zero-latency mock model); the workers run in this process, as the anchor's
 * do. The anchor: bare BullMQ in the same run, on the same Redis: as many
 * jobs added in bulk, run by as many workers of the same concurrency whose
 * processor does nothing, each end heard through QueueEvents.
 */
export interface QueueRow {
  workers: number;
  fanout: number;
  bullmq: number;
}

const clock = new SystemClock();
const TASKS = 2000;
const CONCURRENCY = 64;

async function bareBullmq(url: string, workers: number, prefix: string): Promise<number> {
  const connection = { url, maxRetriesPerRequest: null };
  const queue = new Queue('bare', { connection, prefix });
  const events = new QueueEvents('bare', { connection, prefix });
  await events.waitUntilReady();
  const running = Array.from(
    { length: workers },
    () => new Worker('bare', async () => undefined, { connection, prefix, concurrency: CONCURRENCY }),
  );
  let ended = 0;
  const all = new Promise<void>((resolve) =>
    events.on('completed', () => {
      ended += 1;
      if (ended === TASKS) resolve();
    }),
  );
  const start = clock.now();
  await queue.addBulk(
    Array.from({ length: TASKS }, (_, i) => ({ name: 'job', data: { i }, opts: { removeOnComplete: true } })),
  );
  await all;
  const perSecond = TASKS / ((clock.now() - start) / 1000);
  await Promise.all(running.map((worker) => worker.close()));
  await events.close();
  await queue.close();
  return perSecond;
}

async function throughFanout(url: string, workers: number, prefix: string): Promise<number> {
  const parts = Array.from({ length: workers }, () => {
    const store = new RedisTaskStore({ url, prefix });
    const limiter = new RedisLimiter({ url, prefix });
    const cache = new RedisCacheStore({ url, prefix });
    const engine = createEngine({
      providers: [new MockProvider()],
      store,
      limiter,
      cache: { store: cache },
      resume: false,
      concurrency: CONCURRENCY,
    });
    const queue = new TaskQueue({ url, store, prefix });
    queue.work(engine, { concurrency: CONCURRENCY });
    return { store, limiter, cache, engine, queue };
  });
  const submitter = new RedisTaskStore({ url, prefix });
  const queue = new TaskQueue({ url, store: submitter, prefix });
  const start = clock.now();
  const ids = await queue.submit(
    Array.from({ length: TASKS }, (_, i) => ({
      model: 'mock:q',
      messages: [{ role: 'user' as const, content: `task ${i}` }],
    })),
  );
  const rows = await Promise.all(ids.map((id) => queue.ended(id)));
  const perSecond = TASKS / ((clock.now() - start) / 1000);
  const completed = rows.filter((row) => row.state === 'completed').length;
  if (completed !== TASKS) throw new Error(`R-queue: ${completed} of ${TASKS} completed`);
  await queue.close();
  await submitter.close();
  for (const part of parts) {
    await part.queue.close();
    await part.engine.close();
    await Promise.all([part.limiter.close(), part.cache.close(), part.store.close()]);
  }
  return perSecond;
}

export async function benchQueue(): Promise<{ tasks: number; concurrency: number; rows: QueueRow[] }> {
  const redis = await startRedisServer();
  try {
    const rows: QueueRow[] = [];
    for (const workers of [1, 2, 4]) {
      const bullmq = await bareBullmq(redis.url, workers, `bare-${workers}`);
      const fanout = await throughFanout(redis.url, workers, `fanout-${workers}:`);
      rows.push({ workers, fanout, bullmq });
    }
    return { tasks: TASKS, concurrency: CONCURRENCY, rows };
  } finally {
    await redis.stop();
  }
}
