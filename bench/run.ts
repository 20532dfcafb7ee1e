import { cpus } from 'node:os';
import { benchMemory } from './memory.js';
import { benchOverhead } from './overhead.js';
import { benchScheduling } from './scheduling.js';
import { fmt } from './stats.js';
import { benchKnownLimits, benchTokenRefunds } from './utilisation.js';

/**
 * The quick benchmark set: every figure beside an anchor measured in the same
 * process, printed as a Markdown table. Numbers, never pass/fail: benchmarks
 * do not gate CI.
 */
const rows: string[][] = [];
const row = (...cells: string[]) => {
  rows.push(cells);
  process.stderr.write(`  ${cells[0]}: ${cells[2]}\n`);
};

process.stderr.write(`fanout benchmarks on node ${process.version}, ${cpus().length} cores\n`);

// Memory first, while the process holds nothing else.
const memory = await benchMemory();
row(
  'M-queue',
  `heap per queued task, ${fmt(memory.tasks)} queued (request included)`,
  `${fmt(memory.fanoutBytesPerTask)} B (RSS ${fmt(memory.fanoutRssMb)} MB)`,
  `p-queue ${fmt(memory.pQueueBytesPerTask)} B · the request alone ${fmt(memory.requestBytesPerTask)} B`,
  `${fmt(memory.fanoutBytesPerTask / memory.pQueueBytesPerTask, 2)} × p-queue (goal ≤ 1 KB)`,
);

const sched = await benchScheduling();
row(
  'T-sched',
  `tasks/s, ${fmt(sched.tasks)} zero-latency mock calls, 256 in flight`,
  `${fmt(sched.fanout)}`,
  `p-queue ${fmt(sched.pQueue)} · Bottleneck ${fmt(sched.bottleneck)} (on ${fmt(sched.bottleneckTasks)} tasks)`,
  `${fmt(sched.fanout / sched.pQueue, 2)} × p-queue (goal ≥ 0.75; ≥ 250,000/s)`,
);

const overhead = await benchOverhead();
row(
  'O-call',
  `added latency per call, one in flight, ${fmt(overhead.samples)} samples × 3`,
  `p50 +${fmt(overhead.addedP50Us, 1)} µs · p99 +${fmt(overhead.addedP99Us, 1)} µs`,
  `direct p50 ${fmt(overhead.directP50Us, 1)} µs · p99 ${fmt(overhead.directP99Us, 1)} µs`,
  `goal p50 ≤ 25 µs, p99 ≤ 250 µs`,
);

const known = await benchKnownLimits();
row(
  'W-known',
  `${known.requests} calls, ${known.limit}, lower bound ${fmt(known.lowerBoundMs / 1000, 2)} s`,
  `${fmt(known.fanout.utilisation * 100, 1)} % in ${fmt(known.fanout.wallMs / 1000, 2)} s, ${known.fanout.http429} × 429`,
  `naive (${known.naive.concurrency} workers, retry-after) ${fmt(known.naive.utilisation * 100, 1)} % in ${fmt(known.naive.wallMs / 1000, 2)} s, ${known.naive.http429} × 429`,
  'goal ≥ 97 %, 0 × 429',
);

const tokens = await benchTokenRefunds();
row(
  'W-tokens',
  `steady state from ${tokens.warmupSeconds} s to ${tokens.seconds} s, ${tokens.limit}`,
  `${fmt(tokens.refunding.utilisation * 100, 1)} % of the limit (${fmt(tokens.refunding.outputTokensPerMinute)}/min), ${tokens.refunding.http429} × 429`,
  `reserve-never-refund (cookbook) ${fmt(tokens.neverRefund.utilisation * 100, 1)} %, ${tokens.neverRefund.http429} × 429`,
  'goal ≥ 95 %',
);

const header = ['id', 'what', 'fanout', 'anchor (same run)', 'ratio / goal'];
const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
process.stdout.write(`\nnode ${process.version}, ${cpus().length} cores, ${new Date().toISOString()}\n\n${lines.join('\n')}\n`);
