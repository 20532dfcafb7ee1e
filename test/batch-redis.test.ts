import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { startLimitedUpstream } from './fakes/limited-upstream.js';
import { startWorker } from './processes/worker-process.js';

/**
 * `fanout batch --redis`: batches run by separate processes on one provider
 * share its limits. The upstream enforces 1,200 requests a minute with a
 * 1-second burst and answers 429 beyond it; each process is told that limit.
 */
const bin = new URL('../bin/fanout.js', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fanout(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, FANOUT_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A directory with a config naming the upstream, and one input file per process of `lines` lines. */
function prepare(url: string, processes: number, lines: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-redis-batch-'));
  writeFileSync(
    join(dir, 'fanout.yaml'),
    `providers:\n  vllm: { baseURL: "${url}" }\nmodels:\n  "vllm:m": { limits: { requestsPerMinute: 1200, burstSeconds: 1 } }\n`,
  );
  for (let p = 0; p < processes; p++) {
    const input = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        id: `p${p}-${i}`,
        model: 'vllm:m',
        prompt: `Process ${p}, line ${i}: say hello.`,
        max_tokens: 20,
      }),
    );
    writeFileSync(join(dir, `in-${p}.jsonl`), `${input.join('\n')}\n`);
  }
  return dir;
}

const batchArgs = (p: number, redis: string[]) => [
  'batch',
  `in-${p}.jsonl`,
  '-o',
  `out-${p}.jsonl`,
  '--config',
  'fanout.yaml',
  '--store',
  'memory',
  '--no-cache',
  '--no-progress',
  ...redis,
];

describe('fanout batch --redis', () => {
  it('keeps two batches on one provider within its limit together, where alone each would exceed it', async () => {
    const limits = { requestsPerMinute: 1200, burstSeconds: 1 };
    const latency = { kind: 'fixed' as const, ms: 50 };
    const shared = await startLimitedUpstream(limits, latency);
    const apart = await startLimitedUpstream(limits, latency);
    try {
      const sharedDir = prepare(shared.url, 2, 100);
      const apartDir = prepare(apart.url, 2, 100);
      const redis = ['--redis', inject('redisUrl')];
      const runs = await Promise.all([
        ...[0, 1].map((p) => fanout(batchArgs(p, redis), sharedDir)),
        ...[0, 1].map((p) => fanout(batchArgs(p, []), apartDir)),
      ]);
      // Apart, lines may run out of attempts (exit 1, some failed); together, every line completes.
      for (const run of runs.slice(0, 2)) expect(run.code, run.stderr).toBe(0);
      for (const run of runs.slice(2)) expect([0, 1], run.stderr).toContain(run.code);
      for (const p of [0, 1]) {
        const lines = readFileSync(join(sharedDir, `out-${p}.jsonl`), 'utf8')
          .trim()
          .split('\n');
        expect(lines).toHaveLength(100);
        const states = lines.map((line) => (JSON.parse(line) as { fanout: { state: string } }).fanout.state);
        expect(new Set(states)).toEqual(new Set(['completed']));
      }
      expect(shared.completed()).toBe(200);
      expect(shared.refused()).toBe(0);
      // Without Redis, each process spends the whole limit: the provider refuses some.
      expect(apart.refused()).toBeGreaterThan(0);
    } finally {
      await shared.close();
      await apart.close();
    }
  }, 60_000);

  it('stops at once, naming the server without its password, when Redis cannot be reached', async () => {
    const dir = prepare('http://127.0.0.1:9/v1', 1, 1);
    const run = await fanout(batchArgs(0, ['--redis', 'redis://:hunter2@127.0.0.1:9']), dir);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--redis: cannot reach redis://:***@127.0.0.1:9');
    expect(run.stderr).not.toContain('hunter2');
  }, 30_000);

  it('shares a batch with the fanout workers on its Redis, and writes every line in order', async () => {
    // A database of the test Redis of its own: its queue is this test's alone.
    const url = `${inject('redisUrl')}/8`;
    const config = 'providers:\n  mock:\n    callLog: calls.jsonl\n    models:\n      w: { latency: 100 }\n';
    const batchDir = mkdtempSync(join(tmpdir(), 'fanout-shared-batch-'));
    const workerDir = mkdtempSync(join(tmpdir(), 'fanout-shared-workers-'));
    for (const dir of [batchDir, workerDir]) writeFileSync(join(dir, 'fanout.yaml'), config);
    const input = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ id: `q${i}`, model: 'mock:w', prompt: `question ${i}` }),
    );
    writeFileSync(join(batchDir, 'in.jsonl'), `${input.join('\n')}\n`);
    const workers = [0, 1].map(() =>
      startWorker(workerDir, ['--redis', url, '--config', 'fanout.yaml', '--concurrency', '16']),
    );
    try {
      await Promise.all(workers.map((worker) => worker.ready));
      const run = await fanout(
        ['batch', 'in.jsonl', '-o', 'out.jsonl', '--config', 'fanout.yaml', '--redis', url, '--no-progress'],
        batchDir,
      );
      expect(run.code, run.stderr).toBe(0);
      const out = readFileSync(join(batchDir, 'out.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { custom_id: string; fanout: { state: string } });
      expect(out.map((line) => `${line.custom_id}:${line.fanout.state}`)).toEqual(
        Array.from({ length: 300 }, (_, i) => `q${i}:completed`),
      );
      // Both the batch's own process and the workers ran lines: 300 calls in all, none twice.
      const calls = (dir: string) => readFileSync(join(dir, 'calls.jsonl'), 'utf8').trim().split('\n').length;
      expect(calls(workerDir)).toBeGreaterThan(0);
      expect(calls(batchDir)).toBeGreaterThan(0);
      expect(calls(workerDir) + calls(batchDir)).toBe(300);
    } finally {
      expect(await Promise.all(workers.map((worker) => worker.stop()))).toEqual([0, 0]);
    }
  }, 60_000);
});
