import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/contracts/random.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');
const bin = join(new URL('..', import.meta.url).pathname, 'bin/fanout.js');

/**
 * Runs fanout; with `kill`, sends SIGKILL `afterMs` after the run's first call
 * reaches the call log (so a slow start on a loaded machine cannot make every
 * kill land before any work). Resolves with the exit code (null when killed) and output.
 */
function fanout(
  cwd: string,
  args: string[],
  kill?: { callLog: string; afterMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const callsBefore = kill ? countLines(kill.callLog) : 0;
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, FANOUT_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timer: NodeJS.Timeout | undefined;
    const watch = kill
      ? setInterval(() => {
          if (countLines(kill.callLog) === callsBefore) return;
          clearInterval(watch);
          timer = setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
        }, 5)
      : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(watch);
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const countLines = (path: string): number =>
  existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).length : 0;

function completedInStore(path: string): number {
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM tasks WHERE state = 'completed'").get() as { n: number }).n;
  } catch {
    return 0; // killed before the schema was created
  } finally {
    db.close();
  }
}

describe('fanout batch survives kill -9', () => {
  it('after 5 kills at random moments, every line is answered exactly once and no call is paid twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-crash-'));
    const lines = 2000;
    writeFileSync(
      join(dir, 'in.jsonl'),
      Array.from({ length: lines }, (_, i) =>
        JSON.stringify({ id: `c${i}`, model: 'mock:m', prompt: `prompt ${i}` }),
      ).join('\n'),
    );
    const callLog = join(dir, 'calls.log');
    writeFileSync(
      join(dir, 'fanout.yaml'),
      `concurrency: 64\nproviders:\n  mock:\n    callLog: ${JSON.stringify(callLog)}\n    models:\n      m: { latency: { kind: lognormal, medianMs: 30, sigma: 0.5 } }\n`,
    );
    const db = join(dir, '.fanout', 'fanout.db');
    const args = ['batch', 'in.jsonl', '-o', 'out.jsonl', '--config', 'fanout.yaml', '--no-progress', '--json'];
    const random = seededRandom(20261127);

    // A call is in flight at a kill when it was made in that run and its result was not committed.
    let inFlightAtKills = 0;
    for (let kill = 0; kill < 5; kill++) {
      const callsBefore = countLines(callLog);
      const completedBefore = completedInStore(db);
      await fanout(dir, args, { callLog, afterMs: Math.floor(random.next() * 400) });
      const calls = countLines(callLog) - callsBefore;
      const committed = completedInStore(db) - completedBefore;
      inFlightAtKills += calls - committed;
    }
    const last = await fanout(dir, args);
    expect(last.stderr).toBe('');
    expect(last.code).toBe(0);

    const output = readFileSync(join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(output.map((r) => r.custom_id)).toEqual(Array.from({ length: lines }, (_, i) => `c${i}`));
    expect(output.every((r) => r.response?.status_code === 200)).toBe(true);

    const store = new Database(db, { readonly: true });
    expect(store.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(store.prepare('SELECT count(*) AS n FROM tasks WHERE completions > 1').get()).toEqual({ n: 0 });
    expect(store.prepare("SELECT count(DISTINCT line) AS n FROM tasks WHERE state = 'completed'").get()).toEqual({
      n: lines,
    });
    expect(store.prepare("SELECT count(*) AS n FROM tasks WHERE state = 'completed'").get()).toEqual({ n: lines });
    store.close();

    const extraCalls = countLines(callLog) - lines;
    expect(extraCalls).toBeLessThanOrEqual(inFlightAtKills);
    // The kills must have hit work in progress for the test to mean anything.
    expect(inFlightAtKills).toBeGreaterThan(0);
  });
});
