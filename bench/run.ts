import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchMemory } from './memory.js';
import { benchOverhead } from './overhead.js';
import { benchScheduling, type Upstream } from './scheduling.js';
import { benchSqlite } from './sqlite-store.js';
import { benchGateway } from './gateway.js';
import { benchDag, benchInterviews, benchSimulate } from './pipelines.js';
import { fmt } from './stats.js';
import { benchSoak } from './soak.js';
import { benchSharedLimits } from './shared-limits.js';
import { benchQueue } from './queue.js';
import { benchAnthropicLimits, benchKnownLimits, benchLearnedLimits, benchTokenRefunds } from './utilisation.js';

/**
 * The quick benchmark set: every figure beside an anchor measured in the same
 * process, printed as a Markdown table. Each benchmark runs in a fresh child
 * process, so one's garbage never slows the next. Numbers, never pass/fail:
 * benchmarks do not gate CI.
 */
async function schedulingRow(upstream: Upstream, what: string): Promise<string[]> {
  const s = await benchScheduling(upstream);
  return [
    upstream === 'mock' ? 'T-sched' : 'T-sched (bare)',
    `tasks/s, ${fmt(s.tasks)} ${what}, 256 in flight, median of 3`,
    `${fmt(s.fanout)}`,
    `p-queue ${fmt(s.pQueue)} · Bottleneck ${fmt(s.bottleneck)} (on ${fmt(s.bottleneckTasks)} tasks)`,
    `${fmt(s.fanout / s.pQueue, 2)} × p-queue (goal ≥ 0.75; ≥ 250,000/s)`,
  ];
}

/** F-soak: two and a half minutes of `fanout serve` under another tenant's floods. */
async function soakRow(): Promise<string[]> {
  const s = await benchSoak();
  const ms = (n: number) => `${fmt(n, 1)} ms`;
  return [
    'F-soak',
    `fanout serve, one model at 8 calls × ${s.callMs} ms; the interactive tenant alone (${s.idle.calls} calls), then beside a tenant flooding it for 60 s (${fmt(s.floodCalls)} lines); wait per call = queued + rate-limited`,
    `flood: p50 ${ms(s.flood.p50)} · p99 ${ms(s.flood.p99)} (${s.flood.calls} calls); RSS cold ${fmt(s.rssColdMb)} MB, after a first 15 s flood ${fmt(s.rssStartMb)} MB → peak ${fmt(s.rssPeakMb)} MB → ${fmt(s.rssAfterMb)} MB 30 s after (every 5 s: ${s.rssSettlingMb.map((mb) => fmt(mb)).join(', ')})`,
    `idle server: p50 ${ms(s.idle.p50)} · p99 ${ms(s.idle.p99)}`,
    `p99 +${ms(s.flood.p99 - s.idle.p99)} over idle (goal ≤ one call, ${s.callMs} ms); RSS after ${fmt(s.rssAfterMb / s.rssStartMb, 2)} × start after the first flood (goal ≤ 1.10), ${fmt(s.rssAfterMb / s.rssColdMb, 2)} × cold`,
  ];
}

const benches = {
  memory: async () => {
    const m = await benchMemory();
    return [
      'M-queue',
      `heap per queued task, ${fmt(m.tasks)} queued (request included)`,
      `${fmt(m.fanoutBytesPerTask)} B; RSS ${fmt(m.fanoutRssMb)} MB (${fmt(m.baselineRssMb)} MB before)`,
      `p-queue ${fmt(m.pQueueBytesPerTask)} B · the request alone ${fmt(m.requestBytesPerTask)} B`,
      `${fmt(m.fanoutBytesPerTask / m.pQueueBytesPerTask, 2)} × p-queue (goal ≤ 1 KB, ≤ 150 MB RSS)`,
    ];
  },
  scheduling: () => schedulingRow('mock', 'zero-latency mock calls'),
  'scheduling-bare': () => schedulingRow('bare', 'calls to a provider that answers a constant at once'),
  sqlite: async () => {
    const q = await benchSqlite();
    return [
      'T-sqlite',
      `tasks/s, ${fmt(q.tasks)} zero-latency mock calls, every task kept in a SQLite file (WAL, grouped commits), median of 3`,
      `${fmt(q.sqlite)} (${fmt(q.rows)} completed rows in the file)`,
      `the same engine, tasks in memory only: ${fmt(q.memory)}`,
      `${fmt(q.sqlite / q.memory, 2)} × memory (goal ≥ 50,000/s)`,
    ];
  },
  overhead: async () => {
    const o = await benchOverhead();
    return [
      'O-call',
      `added latency per call, one in flight, ${fmt(o.samples)} samples × 3`,
      `p50 +${fmt(o.addedP50Us, 1)} µs · p99 +${fmt(o.addedP99Us, 1)} µs`,
      `direct p50 ${fmt(o.directP50Us, 1)} µs · p99 ${fmt(o.directP99Us, 1)} µs`,
      'goal p50 ≤ 25 µs, p99 ≤ 250 µs',
    ];
  },
  dag: async () => {
    const d = await benchDag();
    return [
      'W-dag',
      `makespan of a ${d.levels}-level DAG of 6 calls (50-200 ms) on the mock, real time, median of 5`,
      `${fmt(d.makespanMs, 1)} ms; critical path ${d.criticalPathMs} ms (+${fmt(d.makespanMs - d.criticalPathMs, 1)} ms)`,
      `the same DAG one call at a time: ${fmt(d.sequentialMs, 1)} ms`,
      `goal ≤ critical path + ${d.levels} ms (1 ms per level)`,
    ];
  },
  interviews: async () => {
    const i = await benchInterviews();
    return [
      'S-interviews',
      `seed 002: 100 interviews × 10 dependent turns (${fmt(i.calls)} calls), zero-latency models with limits, median of 5`,
      `${fmt(i.interviewsPerSecond)} interviews/s`,
      'the seed measured 8.6 interviews/s',
      'goal ≥ 500 interviews/s',
    ];
  },
  simulate: async () => {
    const s = await benchSimulate();
    return [
      'S-simulate',
      `fanout simulate of a pipeline of ${fmt(s.calls)} calls (forEach over chunks, lognormal 800 ms, 100 at a time)`,
      `${fmt(s.ms)} ms of real time for ${fmt(s.simulatedMs / 1000, 1)} s simulated`,
      '—',
      'reported, no goal',
    ];
  },
  known: async () => {
    const k = await benchKnownLimits();
    return [
      'W-known',
      `${k.requests} calls, ${k.limit}, lower bound ${fmt(k.lowerBoundMs / 1000, 2)} s`,
      `${fmt(k.fanout.utilisation * 100, 1)} % in ${fmt(k.fanout.wallMs / 1000, 2)} s, ${k.fanout.http429} × 429`,
      `naive (${k.naive.concurrency} workers, retry-after) ${fmt(k.naive.utilisation * 100, 1)} % in ${fmt(k.naive.wallMs / 1000, 2)} s, ${k.naive.http429} × 429`,
      'goal ≥ 97 %, 0 × 429',
    ];
  },
  learned: async () => {
    const l = await benchLearnedLimits();
    const share = (r: { http429: number; requests: number }) =>
      `${fmt((r.http429 / Math.max(1, r.requests)) * 100, 2)} %`;
    return [
      'W-learned',
      `steady state from ${l.warmupSeconds} s to ${l.seconds} s, ${l.limit}; fanout given no limit`,
      `${fmt(l.fanout.utilisation * 100, 1)} % of the limit, ${l.fanout.http429} × 429 in ${fmt(l.fanout.requests)} requests (${share(l.fanout)})`,
      `naive (${l.naive.concurrency} workers on the openai SDK, retry-after) ${fmt(l.naive.utilisation * 100, 1)} %, ${l.naive.http429} × 429 in ${fmt(l.naive.requests)} (${share(l.naive)})`,
      'goal ≥ 95 %, 429s ≤ 0.1 % of requests',
    ];
  },
  anthropic: async () => {
    const a = await benchAnthropicLimits();
    const row = (r: { utilisation: number; wallMs: number; http429: number }) =>
      `${fmt(r.utilisation * 100, 1)} % in ${fmt(r.wallMs / 1000, 2)} s, ${r.http429} × 429`;
    return [
      'W-anthropic',
      `${a.calls} calls, ${a.limit}, lower bound ${fmt(a.lowerBoundMs / 1000, 2)} s`,
      `told: ${row(a.told)}`,
      `learned from the headers: ${row(a.learned)}`,
      'goal told ≥ 95 %, learned ≥ 90 %, 0 × 429',
    ];
  },
  tokens: async () => {
    const t = await benchTokenRefunds();
    return [
      'W-tokens',
      `steady state from ${t.warmupSeconds} s to ${t.seconds} s, ${t.limit}`,
      `${fmt(t.refunding.utilisation * 100, 1)} % of the limit (${fmt(t.refunding.outputTokensPerMinute)}/min), ${t.refunding.http429} × 429`,
      `reserve-never-refund (cookbook) ${fmt(t.neverRefund.utilisation * 100, 1)} %, ${t.neverRefund.http429} × 429`,
      'goal ≥ 95 %',
    ];
  },
  'shared-limits': async () => {
    const r = await benchSharedLimits();
    const row = (x: { engines: number; utilisation: number; http429: number; roundTripsPerCall: number }) =>
      `${x.engines}: ${fmt(x.utilisation * 100, 1)} %, ${x.http429} × 429, ${fmt(x.roundTripsPerCall, 3)} round trips/call`;
    return [
      'R-multi',
      `engines sharing one Redis limiter, ${r.limit}, steady state from ${r.warmupSeconds} s to ${r.seconds} s, 64 calls queued per engine`,
      r.shared.map(row).join(' · '),
      `one engine, in-process limiter: ${fmt(r.anchor.utilisation * 100, 1)} %, ${r.anchor.http429} × 429`,
      'goal ≥ 95 % of the limit, 0 × 429, ≤ 0.2 round trips/call',
    ];
  },
  queue: async () => {
    const q = await benchQueue();
    const rows = q.rows.map((r) => `${r.workers}: ${fmt(r.fanout)}/s (${fmt(r.fanout / r.bullmq, 2)} ×)`);
    return [
      'R-queue',
      `tasks/s through the Redis queue, ${fmt(q.tasks)} zero-latency mock tasks, submission to the last outcome read back, workers of ${q.concurrency} at once in one process`,
      rows.join(' · '),
      `bare BullMQ, as many empty jobs: ${q.rows.map((r) => `${r.workers}: ${fmt(r.bullmq)}/s`).join(' · ')}`,
      'goal ≥ 0.5 × bare BullMQ',
    ];
  },
} satisfies Record<string, () => Promise<string[]>>;

/** Heavier sets, run by name only (`npm run bench -- gateway`, `-- soak`); each gives rows of its own. */
const suites = {
  gateway: benchGateway,
  soak: async () => [await soakRow()],
} satisfies Record<string, () => Promise<string[][]>>;

type Name = keyof typeof benches | keyof typeof suites;
const isName = (name: string): name is Name => name in benches || name in suites;

async function rowsOf(name: Name): Promise<string[][]> {
  return name in suites ? suites[name as keyof typeof suites]() : [await benches[name as keyof typeof benches]()];
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  process.stdout.write(JSON.stringify(await rowsOf(args[1] as Name)));
} else {
  const unknown = args.filter((name) => !isName(name));
  if (unknown.length > 0)
    throw new Error(
      `unknown benchmark ${unknown.join(', ')}: expected ${[...Object.keys(benches), ...Object.keys(suites)].join(', ')}`,
    );
  const names: Name[] = args.length > 0 ? (args as Name[]) : (Object.keys(benches) as Name[]);
  process.stderr.write(`fanout benchmarks on node ${process.version}, ${cpus().length} cores\n`);
  const rows: string[][] = [];
  for (const name of names) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 * 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`benchmark ${name} failed (exit ${child.status})`);
    for (const row of JSON.parse(child.stdout) as string[][]) {
      process.stderr.write(`  ${row[0]}: ${row[2]}\n`);
      rows.push(row);
    }
  }
  const header = ['id', 'what', 'fanout', 'anchor (same run)', 'ratio / goal'];
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  process.stdout.write(
    `\nnode ${process.version}, ${cpus().length} cores, ${new Date().toISOString()}\n\n${lines.join('\n')}\n`,
  );
}
