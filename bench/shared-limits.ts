import { createEngine, MemoryLimiter, MockProvider, SystemClock, type Limiter, type LimitSpec } from '../dist/index.js';
import { RedisLimiter } from '../dist/store/redis/index.js';
import { startRedisServer } from '../test/redis-server.js';

/**
 * R-multi: engines sharing one provider's limits through one Redis. Each
 * engine has its own `RedisLimiter` (its own connections) and keeps 64 calls
 * queued on one model of a mock upstream that enforces 6,000 requests a minute
 * with a 1-second burst and answers 429 beyond it; the engines run in one
 * process (round trips and 429s are what is measured, not CPU). From the end
 * of the warm-up to the end of the run: calls the upstream completed against
 * its limit, its 429s, and the limiters' Redis round trips per call. The
 * anchor is one engine on the in-process limiter, same upstream.
 */
export interface SharedLimitsRow {
  engines: number;
  utilisation: number;
  http429: number;
  roundTripsPerCall: number;
}

export interface SharedLimitsResult {
  seconds: number;
  warmupSeconds: number;
  limit: string;
  anchor: SharedLimitsRow;
  shared: SharedLimitsRow[];
}

const clock = new SystemClock();
const limits: LimitSpec = { requestsPerMinute: 6000, burstSeconds: 1 };
const perSecond = 100;

async function run(
  engines: number,
  makeLimiter: () => Limiter,
  timing: { seconds: number; warmupSeconds: number },
): Promise<SharedLimitsRow> {
  const upstream = new MockProvider({
    seed: 7,
    models: { up: { latency: { kind: 'lognormal', medianMs: 100, sigma: 0.3 }, limits } },
  });
  const limiters = Array.from({ length: engines }, makeLimiter);
  const running = limiters.map((limiter) =>
    createEngine({ providers: [upstream], limiter, models: { 'mock:up': { limits } }, cache: false }),
  );
  let stopped = false;
  const lanes = running.flatMap((engine) =>
    Array.from({ length: 64 }, async () => {
      for (let i = 0; !stopped; i++) {
        const ask = { model: 'mock:up', messages: [{ role: 'user' as const, content: `call ${i}` }], maxAttempts: 50 };
        await engine.submit(ask).result();
      }
    }),
  );
  const trips = (): number => limiters.reduce((sum, l) => sum + ((l as RedisLimiter).roundTrips?.() ?? 0), 0);
  await clock.sleep(timing.warmupSeconds * 1000);
  const at = { completed: upstream.stats('up').completed, refused: upstream.stats('up').rateLimited, trips: trips() };
  const from = clock.now();
  await clock.sleep((timing.seconds - timing.warmupSeconds) * 1000);
  const completed = upstream.stats('up').completed - at.completed;
  const row = {
    engines,
    utilisation: completed / (perSecond * ((clock.now() - from) / 1000)),
    http429: upstream.stats('up').rateLimited - at.refused,
    roundTripsPerCall: (trips() - at.trips) / Math.max(1, completed),
  };
  stopped = true;
  await Promise.all(lanes);
  await Promise.all(running.map((engine) => engine.close()));
  for (const limiter of limiters) await (limiter as RedisLimiter).close?.();
  return row;
}

export async function benchSharedLimits(seconds = 9, warmupSeconds = 3): Promise<SharedLimitsResult> {
  const redis = await startRedisServer();
  const timing = { seconds, warmupSeconds };
  try {
    const anchor = await run(1, () => new MemoryLimiter(), timing);
    const shared = [];
    for (const engines of [1, 2, 4]) {
      const prefix = `bench-${engines}:`;
      shared.push(await run(engines, () => new RedisLimiter({ url: redis.url, prefix }), timing));
    }
    return { seconds, warmupSeconds, limit: '6,000 rpm with a 1-second burst', anchor, shared };
  } finally {
    await redis.stop();
  }
}
