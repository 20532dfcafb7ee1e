import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import { TaskQueue } from '../src/queue/task-queue.js';
import { RedisTaskStore } from '../src/store/redis/redis-task-store.js';
import { startWorker, type WorkerProcess } from './processes/worker-process.js';
import { startRedisServer } from './redis-server.js';

/**
 * `fanout worker`s sharing one queue on Redis, one of them killed (SIGKILL)
 * five times while 2,000 tasks run: every task completes once, and the only
 * calls made twice are those the killed workers had in flight.
 */
const concurrency = 8;

const startWorkerOn = (dir: string, url: string) =>
  startWorker(dir, ['--redis', url, '--config', 'fanout.yaml', '--concurrency', String(concurrency)]);

const calls = (dir: string): number =>
  existsSync(join(dir, 'calls.jsonl')) ? readFileSync(join(dir, 'calls.jsonl'), 'utf8').trim().split('\n').length : 0;

describe('fanout worker', () => {
  it('loses no task and completes none twice when a worker is killed five times', async () => {
    // A database of the test Redis of its own, so that no other test's keys meet these.
    const url = `${inject('redisUrl')}/5`;
    const dir = mkdtempSync(join(tmpdir(), 'fanout-workers-'));
    writeFileSync(
      join(dir, 'fanout.yaml'),
      'providers:\n  mock:\n    callLog: calls.jsonl\n    models:\n      w: { latency: 200 }\n',
    );
    const store = new RedisTaskStore({ url });
    const queue = new TaskQueue({ url, store });
    const workers = [0, 1, 2].map(() => startWorkerOn(dir, url));
    try {
      await Promise.all(workers.map((w) => w.ready));
      const ids = await queue.submit(
        Array.from({ length: 2000 }, (_, i) => ({
          model: 'mock:w',
          messages: [{ role: 'user' as const, content: `task ${i}` }],
        })),
      );
      const ended = Promise.all(ids.map((id) => queue.ended(id)));
      for (let kill = 0; kill < 5; kill++) {
        const before = calls(dir);
        while (calls(dir) < before + 250) await sleep(20);
        const victim = workers[kill % 3] as WorkerProcess;
        victim.child.kill('SIGKILL');
        await new Promise((resolve) => victim.child.once('exit', resolve));
        workers[kill % 3] = startWorkerOn(dir, url);
        await workers[kill % 3]?.ready;
      }
      const rows = await ended;
      expect(rows.map((row) => row.state)).toEqual(ids.map(() => 'completed'));
      const completedAttempts = rows.map((row) => row.attempts.filter((a) => a.outcome === 'completed').length);
      expect(completedAttempts).toEqual(ids.map(() => 1));
      // Attempts lost with a killed worker are recorded as such.
      const lost = rows.flatMap((row) => row.attempts.filter((a) => a.error?.code === 'network'));
      expect(lost.length).toBeGreaterThan(0);
      expect(lost.length).toBeLessThanOrEqual(5 * concurrency);
      // The only calls made twice: those in flight on a worker when it was killed.
      expect(calls(dir)).toBeGreaterThanOrEqual(2000);
      expect(calls(dir)).toBeLessThanOrEqual(2000 + 5 * concurrency);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await queue.close();
      await store.close();
    }
  }, 120_000);

  it('loses no task when its Redis restarts mid-run (append-only file on), and resumes without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-workers-restart-'));
    writeFileSync(
      join(dir, 'fanout.yaml'),
      'providers:\n  mock:\n    callLog: calls.jsonl\n    models:\n      w: { latency: 200 }\n',
    );
    let redis = await startRedisServer({ dir, appendOnly: true });
    const port = Number(new URL(redis.url).port);
    const workers = [0, 1].map(() => startWorkerOn(dir, redis.url));
    const store = new RedisTaskStore({ url: redis.url });
    const queue = new TaskQueue({ url: redis.url, store });
    try {
      await Promise.all(workers.map((w) => w.ready));
      const ids = await queue.submit(
        Array.from({ length: 500 }, (_, i) => ({
          model: 'mock:w',
          messages: [{ role: 'user' as const, content: `task ${i}` }],
        })),
      );
      while (calls(dir) < 100) await sleep(20);
      await redis.stop();
      await sleep(2000);
      redis = await startRedisServer({ dir, appendOnly: true, port });
      const rows = await Promise.all(ids.map((id) => queue.ended(id)));
      expect(rows.map((row) => row.state)).toEqual(ids.map(() => 'completed'));
      expect(rows.map((row) => row.attempts.filter((a) => a.outcome === 'completed').length)).toEqual(ids.map(() => 1));
      // The workers went on by themselves: both still running, no restart.
      expect(workers.map((w) => w.child.exitCode)).toEqual([null, null]);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await queue.close();
      await store.close();
      await redis.stop();
    }
  }, 120_000);
});
