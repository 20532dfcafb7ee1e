import { engineOptionsFromConfig } from '../config/engine-options.js';
import type { FanoutConfig } from '../config/schema.js';
import { seededRandom } from '../contracts/random.js';
import { createEngine } from '../create-engine.js';
import { runPipeline, type PipelineRun } from '../pipeline/run.js';
import { resolveInputs, type CheckedStep, type Pipeline } from '../pipeline/spec.js';
import type { LatencyProfile } from '../providers/mock/mock-provider.js';
import { flushMicrotasks, ManualClock } from '../contracts/manual-clock.js';

export interface SimulateOptions {
  /** Models, limits and the mock's latencies. */
  config?: FanoutConfig;
  inputs?: Readonly<Record<string, string>>;
  /** Seed for simulated latencies and faults. Default 1. */
  seed?: number;
}

export interface Simulation {
  run: PipelineRun;
  /**
   * Every call and tool one after another, under the same limits: the wall
   * time of a second simulation with one step, and one call, at a time.
   */
  sequentialMs: number;
  /** sequentialMs ÷ the simulated wall time. */
  speedup: number;
  /** The model calls alone: one after another (under the same limits), and from the first call's start to the last call's end. */
  calls: { sequentialMs: number; wallMs: number };
  /** The chain of steps that set the wall time, first to last. */
  criticalPath: string[];
  /** Calls that waited for a rate limit, and how long. */
  limitWaits: Array<{ step: string; item?: number; model: string; waitMs: number }>;
}

/** The middle of a mock latency profile: what a call is expected to take. */
function typicalMs(profile: LatencyProfile | undefined): number | undefined {
  if (profile === undefined) return undefined;
  if (typeof profile === 'number') return profile;
  if (profile.kind === 'fixed') return profile.ms;
  if (profile.kind === 'lognormal') return profile.medianMs;
  return undefined;
}

/**
 * Runs a pipeline in virtual time: the real engine and scheduler, the mock
 * provider's latency profiles and limits, a `ManualClock` that jumps from one
 * event to the next. A pipeline of minutes is simulated in milliseconds, and
 * nothing is spent. Tool steps take their `expectedMs`.
 */
export async function simulate(pipeline: Pipeline, options: SimulateOptions = {}): Promise<Simulation> {
  // Bad inputs are refused before anything is made, as `fanout run` refuses them.
  resolveInputs(pipeline, options.inputs ?? {});
  const config = options.config ?? {};
  const run = await runVirtually(pipeline, config, options);
  // One after another is simulated too, not summed: a call that waits for a limit waits there as well.
  const sequential = await runVirtually(oneAtATime(pipeline), { ...config, concurrency: 1 }, options);
  const callStarts = run.calls.map((c) => c.startedAt ?? c.endedAt);
  const callsWallMs =
    run.calls.length === 0 ? 0 : Math.max(...run.calls.map((c) => c.endedAt)) - Math.min(...callStarts);
  return {
    run,
    sequentialMs: sequential.wallMs,
    calls: {
      sequentialMs: sequential.calls.reduce((sum, call) => sum + call.rateLimitedMs + call.providerMs, 0),
      wallMs: callsWallMs,
    },
    speedup: run.wallMs > 0 ? sequential.wallMs / run.wallMs : 1,
    criticalPath: criticalPath(pipeline, run),
    limitWaits: run.calls
      .filter((c) => c.rateLimitedMs > 0)
      .map((c) => ({ step: c.step, item: c.item, model: c.model, waitMs: c.rateLimitedMs })),
  };
}

/** Runs `pipeline` on a fresh engine in virtual time until it ends. */
async function runVirtually(pipeline: Pipeline, config: FanoutConfig, options: SimulateOptions): Promise<PipelineRun> {
  const clock = new ManualClock(0);
  const engine = createEngine(engineOptionsFromConfig(config, { clock, random: seededRandom(options.seed ?? 1) }));
  const mock = config.providers?.mock;
  const expectedCallMs = (model: string): number | undefined => {
    if (!model.startsWith('mock:')) return undefined;
    const settings = mock?.models?.[model.slice(5)] ?? mock?.defaults;
    return typicalMs(settings?.latency);
  };
  let finished = false;
  const pending = runPipeline(engine, pipeline, {
    inputs: options.inputs,
    simulateTools: true,
    expectedCallMs,
  }).finally(() => {
    finished = true;
  });
  // A failure is read below, once the clock has run; until then it must not count as unhandled.
  pending.catch(() => undefined);
  while (!finished) {
    await clock.runAll();
    await flushMicrotasks();
    if (!finished && clock.pendingTimers === 0) {
      await flushMicrotasks();
      if (!finished && clock.pendingTimers === 0)
        throw new Error(
          `simulation of ${pipeline.name} stalled: nothing left to wait for, but the pipeline has not ended`,
        );
    }
  }
  const run = await pending;
  await engine.close();
  return run;
}

/** The same pipeline with each step waiting for the one before it (in dependency order): with one call at a time, nothing overlaps. */
function oneAtATime(pipeline: Pipeline): Pipeline {
  const steps = new Map<string, CheckedStep>();
  pipeline.order.forEach((name, i) => {
    const step = pipeline.steps.get(name) as CheckedStep;
    const previous = pipeline.order[i - 1];
    steps.set(
      name,
      previous === undefined || step.dependsOn.includes(previous)
        ? step
        : { ...step, dependsOn: [...step.dependsOn, previous] },
    );
  });
  return { ...pipeline, steps };
}

/** From the step that ended last, back through the dependency that ended last each time. */
export function criticalPath(pipeline: Pipeline, run: PipelineRun): string[] {
  const endOf = (name: string): number => run.steps[name]?.endedAt ?? Number.NEGATIVE_INFINITY;
  let current = [...pipeline.steps.keys()].reduce((a, b) => (endOf(b) > endOf(a) ? b : a));
  const path = [current];
  for (;;) {
    const step = pipeline.steps.get(current) as CheckedStep;
    if (step.dependsOn.length === 0) break;
    current = step.dependsOn.reduce((a, b) => (endOf(b) > endOf(a) ? b : a));
    path.unshift(current);
  }
  return path;
}
