import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { createEngine, MockProvider, SystemClock, type TaskRequest } from '../dist/index.js';
import type { ModelCall } from '../dist/providers/provider.js';
import { median, nowMs } from './stats.js';

/**
 * T-sched: in-process scheduling throughput. Every system runs the same work:
 * N calls to the same zero-latency mock model, at most 256 in flight. fanout
 * goes through its whole path (validation, limit key with a requests-per-minute
 * bucket, task record, events off, result gathered in input order).
 */

const CONCURRENCY = 256;
const signal = new AbortController().signal;
const clock = new SystemClock();

function request(i: number): TaskRequest {
  return { model: 'mock:bench', messages: [{ role: 'user', content: `prompt number ${i}` }], maxTokens: 64 };
}

function call(i: number): ModelCall {
  return { model: 'bench', messages: [{ role: 'user', content: `prompt number ${i}` }], maxTokens: 64 };
}

async function fanout(n: number): Promise<number> {
  const engine = createEngine({ concurrency: CONCURRENCY, models: { 'mock:bench': { limits: { requestsPerMinute: 1e12 } } } });
  const requests = Array.from({ length: n }, (_, i) => request(i));
  const start = nowMs();
  const outcomes = await engine.gather(requests);
  const elapsed = nowMs() - start;
  if (outcomes.some((o) => !o.ok)) throw new Error('fanout: a task failed');
  await engine.close();
  return n / (elapsed / 1000);
}

/** Schedules n mock calls through `schedule` and returns calls per second. */
async function anchorRate(n: number, schedule: (job: () => Promise<unknown>) => Promise<unknown>): Promise<number> {
  const mock = new MockProvider();
  const start = nowMs();
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(schedule(() => mock.complete(call(i), { signal, attempt: 1, clock })));
  await Promise.all(pending);
  return n / ((nowMs() - start) / 1000);
}

function pQueue(n: number): Promise<number> {
  const queue = new PQueue({ concurrency: CONCURRENCY });
  return anchorRate(n, (job) => queue.add(job));
}

async function bottleneck(n: number): Promise<number> {
  const limiter = new Bottleneck({ maxConcurrent: CONCURRENCY });
  const rate = await anchorRate(n, (job) => limiter.schedule(job));
  await limiter.stop();
  return rate;
}

export interface SchedulingResult {
  fanout: number;
  pQueue: number;
  bottleneck: number;
  tasks: number;
  /** Bottleneck is measured on fewer tasks: its per-task cost grows with the queue. */
  bottleneckTasks: number;
}

export async function benchScheduling(tasks = 100_000, repeats = 3): Promise<SchedulingResult> {
  await fanout(5000);
  await pQueue(5000);
  const f: number[] = [];
  const p: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < repeats; r++) {
    f.push(await fanout(tasks));
    p.push(await pQueue(tasks));
    b.push(await bottleneck(Math.min(tasks, 2_000)));
  }
  return { fanout: median(f), pQueue: median(p), bottleneck: median(b), tasks, bottleneckTasks: Math.min(tasks, 2_000) };
}
