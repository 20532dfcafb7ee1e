import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentiles } from '../dist/metrics/percentiles.js';
import { nowMs } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One model whose key binds: 8 calls at a time, 50 ms each, so 160 calls a second at most. */
const CALL_MS = 50;
const SLOTS = 8;
const IDLE_SECONDS = 15;
const FLOOD_SECONDS = 60;
const SETTLE_SECONDS = 30;
/** A first, shorter flood before the start is read: what a server compiles and fills once (code, fixed-size caches) is in both readings. */
const WARM_FLOOD_SECONDS = 15;

export interface SoakResult {
  idle: { p50: number; p99: number; calls: number };
  flood: { p50: number; p99: number; calls: number };
  floodCalls: number;
  callMs: number;
  /** After the idle phase, before any flood. */
  rssColdMb: number;
  /** After a first, 15-second flood drained and settled: the start the flood is compared with. */
  rssStartMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  /** RSS every 5 s after the flood drained, the last at SETTLE_SECONDS. */
  rssSettlingMb: number[];
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

async function startServe(dir: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const config = join(dir, 'fanout.yaml');
  writeFileSync(
    config,
    `models:\n  "mock:work": { limits: { maxConcurrent: ${SLOTS} } }\nproviders:\n  mock: { models: { work: { latency: ${CALL_MS}, outputTokens: 20 } } }\n`,
  );
  const log = join(dir, 'serve.log');
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/fanout.js'),
      'serve',
      '--port',
      '0',
      '--config',
      config,
      '--store',
      `sqlite:${join(dir, 'fanout.db')}`,
      '--key',
      'flood=fk-flood',
      '--key',
      'interactive=fk-interactive',
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'ignore', openSync(log, 'a')],
    },
  );
  const until = Date.now() + 20_000;
  for (;;) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(readFileSync(log, 'utf8'));
    if (match) {
      const stop = async (): Promise<void> => {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      };
      return { url: match[1] as string, pid: child.pid as number, stop };
    }
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`fanout serve did not start:\n${readFileSync(log, 'utf8')}`);
    await sleep(50);
  }
}

/** The interactive tenant: one task at a time, 100 ms apart, until `untilMs`; each task's wait for its turn and its limits. */
async function interactive(url: string, untilMs: number): Promise<number[]> {
  const waits: number[] = [];
  while (nowMs() < untilMs) {
    const response = await fetch(`${url}/v1/tasks?wait=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer fk-interactive', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'mock:work',
        messages: [{ role: 'user', content: `interactive ${waits.length}` }],
      }),
    });
    const status = (await response.json()) as { state: string; timing: { queuedMs: number; rateLimitedMs: number } };
    if (status.state !== 'completed') throw new Error(`an interactive task ended ${status.state}`);
    waits.push(status.timing.queuedMs + status.timing.rateLimitedMs);
    await sleep(100);
  }
  return waits;
}

async function pending(url: string): Promise<number> {
  return ((await (await fetch(`${url}/readyz`)).json()) as { pending: number }).pending;
}

/** The flooding tenant: batches of 1,000 lines, keeping at least 2,000 calls waiting, until `untilMs`. Returns the lines sent. */
async function flood(url: string, untilMs: number): Promise<number> {
  let sent = 0;
  while (nowMs() < untilMs) {
    if ((await pending(url)) < 2000) {
      const lines = Array.from({ length: 1000 }, (_, i) =>
        JSON.stringify({ model: 'mock:work', prompt: `flood ${sent + i}` }),
      ).join('\n');
      const response = await fetch(`${url}/v1/batches`, {
        method: 'POST',
        headers: { authorization: 'Bearer fk-flood', 'content-type': 'application/x-ndjson' },
        body: lines,
      });
      if (response.status !== 202)
        throw new Error(`a flood batch was answered ${response.status}: ${await response.text()}`);
      sent += 1000;
    }
    await sleep(250);
  }
  return sent;
}

/** Waits for the queue to drain, then `SETTLE_SECONDS`; the RSS of `pid` every 5 s meanwhile. */
async function settle(url: string, pid?: number): Promise<number[]> {
  while ((await pending(url)) > 0) await sleep(250);
  const rss: number[] = [];
  for (let s = 5; s <= SETTLE_SECONDS; s += 5) {
    await sleep(5000);
    if (pid !== undefined) rss.push(rssMb(pid));
  }
  return rss;
}

const summary = (waits: number[]) => {
  const [p50, p99] = percentiles(waits, [50, 99]);
  return { p50: p50 ?? Number.NaN, p99: p99 ?? Number.NaN, calls: waits.length };
};

/**
 * F-soak: two tenants on one `fanout serve` (as a user starts it: SQLite
 * store, API keys), one model whose key binds (8 calls at a time, 50 ms
 * each). First the interactive tenant alone, one task at a time (the anchor);
 * then the same while the other tenant floods the same model with batches,
 * keeping thousands of calls queued, for 60 s. The interactive tenant's wait
 * per call (queued plus rate-limited time, as the server reports it) is
 * compared. RSS is read before any flood (cold), then after a first 15 s
 * flood has drained and settled for 30 s (the start: code compiled and
 * caches of fixed size are in it), at the main flood's peak, and every 5 s
 * for 30 s after it has drained (the figure is the last).
 */
export async function benchSoak(): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-soak-'));
  const server = await startServe(dir);
  try {
    await interactive(server.url, nowMs() + 2000);
    const idle = summary(await interactive(server.url, nowMs() + IDLE_SECONDS * 1000));
    const rssColdMb = rssMb(server.pid);
    await flood(server.url, nowMs() + WARM_FLOOD_SECONDS * 1000);
    await settle(server.url);
    const rssStartMb = rssMb(server.pid);
    let rssPeakMb = rssStartMb;
    const floodEnds = nowMs() + FLOOD_SECONDS * 1000;
    const watching = setInterval(() => (rssPeakMb = Math.max(rssPeakMb, rssMb(server.pid))), 500);
    const [waits, floodCalls] = await Promise.all([interactive(server.url, floodEnds), flood(server.url, floodEnds)]);
    clearInterval(watching);
    const rssSettlingMb = await settle(server.url, server.pid);
    return {
      idle,
      flood: summary(waits),
      floodCalls,
      callMs: CALL_MS,
      rssColdMb,
      rssStartMb,
      rssPeakMb,
      rssAfterMb: rssSettlingMb.at(-1) as number,
      rssSettlingMb,
    };
  } finally {
    await server.stop();
  }
}
