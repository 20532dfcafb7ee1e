import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { createEngine, MockProvider, SystemClock, type Provider, type TaskRequest } from '../dist/index.js';
import type { ModelCall } from '../dist/contracts/provider.js';
import { median, nowMs } from './stats.js';

/**
 * T-sched: in-process scheduling throughput. Every system runs the same work:
 * N calls, at most 256 in flight, each request built inside the timed region.
 * fanout goes through its whole path (validation, a limit key with a
 * requests-per-minute bucket, task record, accounting, results gathered in
 * input order).
 *
 * Two upstreams: the zero-latency mock model (which makes up text and counts
 * tokens, a few µs per call), and a bare provider that answers with a
 * constant at once, which leaves nothing but the scheduling to measure.
 */

const CONCURRENCY = 256;
const signal = new AbortController().signal;
const clock = new SystemClock();

export type Upstream = 'mock' | 'bare';

const RESULT = Object.freeze({
  text: 'ok',
  usage: Object.freeze({ inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 }),
  finishReason: 'stop' as const,
  model: 'bench',
});

function bareProvider(): Provider {
  return {
    name: 'bare',
    accounting: () => ({ rule: 'anthropic' }),
    complete: () => Promise.resolve(RESULT),
    stream: () => {
      throw new Error('not used');
    },
  };
}

function provider(upstream: Upstream): Provider {
  return upstream === 'mock' ? new MockProvider() : bareProvider();
}

function request(upstream: Upstream, i: number): TaskRequest {
  return { model: `${upstream}:bench`, messages: [{ role: 'user', content: `prompt number ${i}` }], maxTokens: 64 };
}

function call(i: number): ModelCall {
  return { model: 'bench', messages: [{ role: 'user', content: `prompt number ${i}` }], maxTokens: 64 };
}

async function fanout(upstream: Upstream, n: number): Promise<number> {
  const model = `${upstream}:bench`;
  const engine = createEngine({
    concurrency: CONCURRENCY,
    providers: [provider(upstream)],
    models: { [model]: { limits: { requestsPerMinute: 1e12 } } },
  });
  const start = nowMs();
  const requests = Array.from({ length: n }, (_, i) => request(upstream, i));
  const outcomes = await engine.gather(requests);
  const elapsed = nowMs() - start;
  if (outcomes.some((o) => !o.ok)) throw new Error('fanout: a task failed');
  await engine.close();
  return n / (elapsed / 1000);
}

/** Schedules n calls through `schedule` and returns calls per second. */
async function anchorRate(
  upstream: Upstream,
  n: number,
  schedule: (job: () => Promise<unknown>) => Promise<unknown>,
): Promise<number> {
  const target = provider(upstream);
  const start = nowMs();
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(schedule(() => target.complete(call(i), { signal, attempt: 1, clock })));
  await Promise.all(pending);
  return n / ((nowMs() - start) / 1000);
}

function pQueue(upstream: Upstream, n: number): Promise<number> {
  const queue = new PQueue({ concurrency: CONCURRENCY });
  return anchorRate(upstream, n, (job) => queue.add(job));
}

async function bottleneck(upstream: Upstream, n: number): Promise<number> {
  const limiter = new Bottleneck({ maxConcurrent: CONCURRENCY });
  const rate = await anchorRate(upstream, n, (job) => limiter.schedule(job));
  await limiter.stop();
  return rate;
}

export interface SchedulingResult {
  upstream: Upstream;
  fanout: number;
  pQueue: number;
  bottleneck: number;
  tasks: number;
  /** Bottleneck is measured on fewer tasks: its per-task cost grows with the queue. */
  bottleneckTasks: number;
}

export async function benchScheduling(upstream: Upstream, tasks = 100_000, repeats = 3): Promise<SchedulingResult> {
  const bottleneckTasks = Math.min(tasks, 2_000);
  await fanout(upstream, 5000);
  await pQueue(upstream, 5000);
  const f: number[] = [];
  const p: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < repeats; r++) {
    f.push(await fanout(upstream, tasks));
    p.push(await pQueue(upstream, tasks));
    b.push(await bottleneck(upstream, bottleneckTasks));
  }
  return { upstream, fanout: median(f), pQueue: median(p), bottleneck: median(b), tasks, bottleneckTasks };
}
