import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { MockProvider } from '../src/providers/mock/mock-provider.js';
import { RedisLimiter } from '../src/store/redis/redis-limiter.js';
import { startRedisServer } from './redis-server.js';

/**
 * The Redis a limiter shares goes away mid-run and comes back (append-only
 * file on, so its buckets survive): the engine keeps every task, spends no
 * more than the limit while it cannot lease, and carries on by itself once
 * Redis answers again, without a restart.
 */
describe('a Redis limiter across a Redis restart', () => {
  it('loses no task, keeps the limit, and resumes on its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-redis-restart-'));
    let redis = await startRedisServer({ dir, appendOnly: true });
    const port = Number(new URL(redis.url).port);
    const errors: string[] = [];
    const limiter = new RedisLimiter({ url: redis.url, prefix: 'restart:', onError: (e) => errors.push(e.message) });
    const limits = { requestsPerMinute: 1200, burstSeconds: 1 };
    // The mock enforces the same limit itself and answers 429 beyond it.
    const mock = new MockProvider({ models: { m: { latency: 50, limits } } });
    const engine = createEngine({ providers: [mock], limiter, models: { 'mock:m': { limits } }, cache: false });
    try {
      const handles = Array.from({ length: 120 }, (_, i) =>
        engine.submit({ model: 'mock:m', messages: [{ role: 'user', content: `call ${i}` }], maxAttempts: 20 }),
      );
      while (mock.stats('m').completed < 20) await sleep(20);
      await redis.stop();
      const whileDown = mock.stats('m').completed;
      await sleep(1500);
      redis = await startRedisServer({ dir, appendOnly: true, port });
      const outcomes = await Promise.allSettled(handles.map((handle) => handle.result()));
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
      expect(mock.stats('m').completed).toBe(120);
      expect(mock.stats('m').rateLimited).toBe(0);
      // It was cut off: round trips failed while Redis was down, and it went on after.
      expect(errors.length).toBeGreaterThan(0);
      expect(whileDown).toBeLessThan(120);
    } finally {
      await engine.close();
      await limiter.close();
      await redis.stop();
    }
  }, 60_000);
});
