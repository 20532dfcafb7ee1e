import { createEngine, MockProvider, checkPipeline, runPipeline, simulate } from '../dist/index.js';
import { interviewEngine, runInterviews } from '../examples/interviews.js';
import { median, nowMs } from './stats.js';

/**
 * W-dag: a three-level DAG on the mock with real latencies (100-200 ms),
 * makespan against its critical path, and against the same DAG run one call
 * at a time (engine concurrency 1).
 */
const dag = checkPipeline(
  {
    steps: {
      quality: { model: 'mock:l100', prompt: 'q' },
      architect: { model: 'mock:l150', prompt: 'a' },
      lld: { model: 'mock:l200', prompt: 'l' },
      summary: {
        model: 'mock:l100',
        prompt: '{{ steps.quality.output }} {{ steps.architect.output }} {{ steps.lld.output }}',
      },
      fixes: { model: 'mock:l50', prompt: 'f {{ steps.summary.output }}' },
      tests: { model: 'mock:l120', prompt: 't {{ steps.summary.output }}' },
    },
  },
  'dag',
);
const DAG_CRITICAL_PATH_MS = 200 + 100 + 120;
const DAG_LEVELS = 3;

function dagEngine(concurrency: number) {
  const models = Object.fromEntries([50, 100, 120, 150, 200].map((ms) => [`l${ms}`, { latency: ms }]));
  return createEngine({ concurrency, cache: false, providers: [new MockProvider({ models })] });
}

export interface DagResult {
  criticalPathMs: number;
  levels: number;
  makespanMs: number;
  sequentialMs: number;
}

export async function benchDag(repeats = 5): Promise<DagResult> {
  const parallel: number[] = [];
  const sequential: number[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const [concurrency, into] of [
      [256, parallel],
      [1, sequential],
    ] as const) {
      const engine = dagEngine(concurrency);
      const start = nowMs();
      const run = await runPipeline(engine, dag);
      into.push(nowMs() - start);
      if (!run.ok) throw new Error('the DAG failed');
      await engine.close();
    }
  }
  return {
    criticalPathMs: DAG_CRITICAL_PATH_MS,
    levels: DAG_LEVELS,
    makespanMs: median(parallel),
    sequentialMs: median(sequential),
  };
}

/** S-interviews: seed 002's 100 interviews of 10 turns on zero-latency models, median of 5. */
export async function benchInterviews(repeats = 5): Promise<{ interviewsPerSecond: number; calls: number }> {
  const rates: number[] = [];
  let calls = 0;
  for (let r = 0; r < repeats + 1; r++) {
    const engine = interviewEngine('instant');
    const start = nowMs();
    const result = await runInterviews(engine, { interviews: 100, turns: 10 });
    const seconds = (nowMs() - start) / 1000;
    await engine.close();
    if (result.failed > 0) throw new Error('an interview failed');
    calls = result.calls;
    if (r > 0) rates.push(result.interviews / seconds);
  }
  return { interviewsPerSecond: median(rates), calls };
}

/** The time `simulate` takes for a pipeline of 10,000 calls (a forEach over 10,000 chunks), in real milliseconds. */
export async function benchSimulate(calls = 10_000): Promise<{ calls: number; ms: number; simulatedMs: number }> {
  const pipeline = checkPipeline(
    {
      inputs: ['text'],
      steps: {
        // Each line starts a block of its own and two never fit one chunk: one call per line.
        parts: { split: { from: 'text', maxTokens: 12, boundary: 'item' } },
        review: { forEach: 'parts', model: 'mock:reviewer', prompt: 'review {{ item }}' },
      },
    },
    'ten-thousand',
  );
  const text = Array.from({ length: calls }, (_, i) => `item ${String(i).padStart(5, '0')} needs a review\n`).join('');
  const config = {
    models: { 'mock:reviewer': { limits: { requestsPerMinute: 60_000, maxConcurrent: 100 } } },
    providers: {
      mock: { models: { reviewer: { latency: { kind: 'lognormal' as const, medianMs: 800, sigma: 0.4 } } } },
    },
  };
  const start = nowMs();
  const result = await simulate(pipeline, { config, inputs: { text } });
  const ms = nowMs() - start;
  if (result.run.calls.length !== calls)
    throw new Error(`simulated ${result.run.calls.length} calls, expected ${calls}`);
  return { calls, ms, simulatedMs: result.run.wallMs };
}
