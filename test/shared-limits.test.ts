import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { startLimitedUpstream } from './fakes/limited-upstream.js';

/**
 * Several fanout processes, one provider: an OpenAI-compatible upstream that
 * enforces 600 requests and 60,000 tokens a minute with a 1-second burst, and
 * answers 429 beyond them. Each process runs its own engine on a
 * `RedisLimiter` pointing at one Redis; together they must never be refused
 * and must use at least 95 % of the binding limit (600 a minute: the calls
 * are small, so tokens never bind) once the first seconds are past.
 */
const worker = fileURLToPath(new URL('./processes/limit-worker.mjs', import.meta.url));
const perSecond = 10;
const warmupSeconds = 4;

interface WorkerReport {
  completed: number;
  failed: number;
  roundTrips: number;
}

function runWorker(args: string[]): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as WorkerReport);
      else reject(new Error(`limit worker exited ${code}: ${err}`));
    });
  });
}

async function sharedRun(options: { mode: 'told' | 'learned'; skewsMs: number[]; seconds: number }) {
  const upstream = await startLimitedUpstream(
    { requestsPerMinute: 600, tokensPerMinute: 60_000, burstSeconds: 1 },
    { kind: 'lognormal', medianMs: 120, sigma: 0.3 },
  );
  const prefix = `test-${randomUUID()}:`;
  try {
    const runFor = String(warmupSeconds + options.seconds + 1);
    const workers = options.skewsMs.map((skew) =>
      runWorker([upstream.url, inject('redisUrl'), prefix, options.mode, runFor, String(skew)]),
    );
    await sleep(warmupSeconds * 1000);
    const atWarm = upstream.completed();
    const warmAt = performance.now();
    await sleep(options.seconds * 1000);
    const utilisation = (upstream.completed() - atWarm) / (perSecond * ((performance.now() - warmAt) / 1000));
    const reports = await Promise.all(workers);
    return { utilisation, refused: upstream.refused(), reports };
  } finally {
    await upstream.close();
  }
}

describe.concurrent('processes sharing one provider’s limits through Redis', () => {
  it('three processes told the limits: no 429, at least 95 % of the limit over 30 s', async () => {
    const run = await sharedRun({ mode: 'told', skewsMs: [0, 0, 0], seconds: 30 });
    expect(run.refused).toBe(0);
    expect(run.utilisation).toBeGreaterThanOrEqual(0.95);
    expect(run.utilisation).toBeLessThanOrEqual(1.05);
    // Every process got its share, and nothing failed.
    for (const report of run.reports) {
      expect(report.failed).toBe(0);
      expect(report.completed).toBeGreaterThan(30 * perSecond * 0.15);
    }
  }, 60_000);

  it('three processes learning the limits from headers: no 429, at least 95 % of the limit over 30 s', async () => {
    const run = await sharedRun({ mode: 'learned', skewsMs: [0, 0, 0], seconds: 30 });
    expect(run.refused).toBe(0);
    expect(run.utilisation).toBeGreaterThanOrEqual(0.95);
    for (const report of run.reports) expect(report.failed).toBe(0);
  }, 60_000);

  it('two processes whose clocks disagree by 5 s keep the limit', async () => {
    const run = await sharedRun({ mode: 'told', skewsMs: [0, 5000], seconds: 15 });
    expect(run.refused).toBe(0);
    expect(run.utilisation).toBeGreaterThanOrEqual(0.95);
    expect(run.utilisation).toBeLessThanOrEqual(1.05);
  }, 60_000);
});
