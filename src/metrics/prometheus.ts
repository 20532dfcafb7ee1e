import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../core/engine.js';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

/** What the metrics read of a finished pipeline run (a `PipelineRun` is one). */
export interface RunTimes {
  pipeline: string;
  steps: Record<string, { name: string; state: string; startedAt?: number; endedAt?: number }>;
  tools: ReadonlyArray<{ step: string; startedAt: number; endedAt: number }>;
}

/** Distinct pipeline/step label pairs kept; runs beyond them count under `step="(other)"`. */
const MAX_STEP_SERIES = 1000;
/**
 * Distinct model names (and limit keys) given series of their own; any beyond
 * count under `model="(other)"`. Clients name models, so without a cap one
 * batch of invented names would make every scrape megabytes long.
 */
export const MAX_MODEL_SERIES = 100;

export interface FanoutMetrics {
  registry: Registry;
  /** Records a finished pipeline run: each step's duration and each tool call's. */
  observeRun(run: RunTimes): void;
}

/**
 * The engine's figures in Prometheus form, on a registry of their own (no
 * process-wide state): task and provider latency per model (p50/p90/p99 from
 * the histograms), tasks by outcome, attempts, 429s, retries, tokens and
 * cost, pipeline step and tool latency, and, read at each scrape, tasks by
 * state (queue depth, rate-limited), calls in flight and each limit bucket's
 * fill.
 */
export function engineMetrics(engine: Engine): FanoutMetrics {
  const registry = new Registry();
  const models = new Set<string>();
  const modelLabel = (model: string): string => {
    if (models.has(model)) return model;
    if (models.size >= MAX_MODEL_SERIES) return '(other)';
    models.add(model);
    return model;
  };
  const tasks = new Counter({
    name: 'fanout_tasks_total',
    help: 'Tasks that ended, by outcome',
    labelNames: ['model', 'outcome'],
    registers: [registry],
  });
  completionMetrics(engine, registry, tasks, modelLabel);
  failureMetrics(engine, registry, tasks, modelLabel);
  stateGauges(engine, registry);
  storeMetrics(engine, registry);
  return { registry, observeRun: runMetrics(registry) };
}

/** Completed tasks: their time, provider time, waits, tokens and cost, by model. */
function completionMetrics(
  engine: Engine,
  registry: Registry,
  tasks: Counter<'model' | 'outcome'>,
  modelLabel: (model: string) => string,
): void {
  const taskSeconds = new Histogram({
    name: 'fanout_task_duration_seconds',
    help: 'Submission to end of completed tasks',
    labelNames: ['model'],
    buckets: SECONDS,
    registers: [registry],
  });
  const providerSeconds = new Histogram({
    name: 'fanout_provider_duration_seconds',
    help: 'Time in provider calls of completed tasks',
    labelNames: ['model'],
    buckets: SECONDS,
    registers: [registry],
  });
  const waitSeconds = new Histogram({
    name: 'fanout_rate_limited_seconds',
    help: 'Time completed tasks waited for a rate limit or a retry',
    labelNames: ['model'],
    buckets: SECONDS,
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'fanout_tokens_total',
    help: 'Tokens of completed calls (cache hits excluded)',
    labelNames: ['model', 'kind'],
    registers: [registry],
  });
  const cost = new Counter({
    name: 'fanout_cost_usd_total',
    help: 'US dollars of completed calls, from configured prices',
    labelNames: ['model'],
    registers: [registry],
  });
  engine.on('task-completed', (event) => {
    const status = event.taskId ? engine.status(event.taskId) : undefined;
    if (!status) return;
    const model = modelLabel(status.model);
    tasks.inc({ model, outcome: 'completed' });
    taskSeconds.observe({ model }, status.timing.totalMs / 1000);
    if (status.result?.cache) return;
    providerSeconds.observe({ model }, status.timing.providerMs / 1000);
    waitSeconds.observe({ model }, status.timing.rateLimitedMs / 1000);
    const usage = status.result?.usage;
    if (usage) {
      tokens.inc({ model, kind: 'input' }, usage.inputTokens);
      tokens.inc({ model, kind: 'output' }, usage.outputTokens);
      tokens.inc({ model, kind: 'cache_read' }, usage.cacheReadTokens);
      tokens.inc({ model, kind: 'cache_write' }, usage.cacheWriteTokens);
      const dollars = engine.priceOf(status.model, usage);
      if (dollars !== undefined) cost.inc({ model }, dollars);
    }
  });
}

/** Tasks that failed or were cancelled, failed attempts (429s apart) and retries, by model. */
function failureMetrics(
  engine: Engine,
  registry: Registry,
  tasks: Counter<'model' | 'outcome'>,
  modelLabel: (model: string) => string,
): void {
  const modelOf = (taskId: string): string => modelLabel(engine.status(taskId)?.model ?? 'unknown');
  const failures = new Counter({
    name: 'fanout_attempt_failures_total',
    help: 'Failed attempts, by error code',
    labelNames: ['model', 'code'],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'fanout_provider_429_total',
    help: 'Attempts a provider answered 429',
    labelNames: ['model'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'fanout_retries_total',
    help: 'Attempts scheduled again after a failure',
    labelNames: ['model'],
    registers: [registry],
  });
  engine.on('task-failed', (event) => tasks.inc({ model: modelOf(event.taskId), outcome: 'failed' }));
  engine.on('task-cancelled', (event) => tasks.inc({ model: modelOf(event.taskId), outcome: 'cancelled' }));
  engine.on('attempt-failed', (event) => {
    const model = modelOf(event.taskId);
    failures.inc({ model, code: event.error?.code ?? 'unknown' });
    if (event.error?.status === 429) refused.inc({ model });
  });
  engine.on('task-retrying', (event) => retries.inc({ model: modelOf(event.taskId) }));
}

/** Read at each scrape: tasks pending and by state, calls in flight, and how full each limit bucket is. */
function stateGauges(engine: Engine, registry: Registry): void {
  new Gauge({
    name: 'fanout_tasks_pending',
    help: 'Tasks not ended',
    registers: [registry],
    collect() {
      this.set(engine.pendingCount);
    },
  });
  new Gauge({
    name: 'fanout_calls_in_flight',
    help: 'Provider calls in flight',
    registers: [registry],
    collect() {
      this.set(engine.inFlight);
    },
  });
  new Gauge({
    name: 'fanout_tasks_by_state',
    help: 'Tasks not ended, by state (queued: waiting their turn; rate_limited: waiting for a limit or a retry; processing: in a call)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(engine.pendingByState())) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'fanout_limiter_fill_ratio',
    help: 'Share of each limit bucket available now (1: full, a burst may go at once; 0: empty, calls wait for refill)',
    labelNames: ['key', 'limit'],
    registers: [registry],
    collect() {
      this.reset();
      const now = engine.clock.now();
      let shown = 0;
      for (const key of engine.limiter.keyNames()) {
        if (shown++ >= MAX_MODEL_SERIES) break;
        for (const level of engine.limiter.levels(key, now)) {
          if (level.capacity > 0) this.set({ key, limit: level.name }, Math.min(1, level.remaining / level.capacity));
        }
      }
    },
  });
}

/** The task store: failed writes by code, and whether it takes writes now. */
function storeMetrics(engine: Engine, registry: Registry): void {
  const storeErrors = new Counter({
    name: 'fanout_store_errors_total',
    help: 'Failed writes to the task store, and tasks it could not hold, by code',
    labelNames: ['code'],
    registers: [registry],
  });
  engine.on('store-error', (event) => storeErrors.inc({ code: event.error?.code ?? 'unknown' }));
  new Gauge({
    name: 'fanout_store_ok',
    help: '1 while the task store takes writes, 0 while they fail',
    registers: [registry],
    collect() {
      this.set(engine.storeHealth().ok ? 1 : 0);
    },
  });
}

/** Pipeline steps and tool calls, by pipeline and step (at most MAX_STEP_SERIES pairs); returns what records a run. */
function runMetrics(registry: Registry): (run: RunTimes) => void {
  const stepSeconds = new Histogram({
    name: 'fanout_step_duration_seconds',
    help: 'Pipeline steps from start to end, by pipeline and step',
    labelNames: ['pipeline', 'step', 'state'],
    buckets: SECONDS,
    registers: [registry],
  });
  const toolSeconds = new Histogram({
    name: 'fanout_tool_duration_seconds',
    help: 'Calls of tool steps, by pipeline and step',
    labelNames: ['pipeline', 'step'],
    buckets: SECONDS,
    registers: [registry],
  });
  const stepSeries = new Set<string>();
  const stepLabel = (pipeline: string, step: string): { pipeline: string; step: string } => {
    const id = JSON.stringify([pipeline, step]);
    if (stepSeries.has(id)) return { pipeline, step };
    if (stepSeries.size >= MAX_STEP_SERIES) return { pipeline: '(other)', step: '(other)' };
    stepSeries.add(id);
    return { pipeline, step };
  };

  const observeRun = (run: RunTimes): void => {
    for (const step of Object.values(run.steps)) {
      if (step.startedAt === undefined || step.endedAt === undefined) continue;
      stepSeconds.observe(
        { ...stepLabel(run.pipeline, step.name), state: step.state },
        (step.endedAt - step.startedAt) / 1000,
      );
    }
    for (const tool of run.tools)
      toolSeconds.observe(stepLabel(run.pipeline, tool.step), (tool.endedAt - tool.startedAt) / 1000);
  };
  return observeRun;
}
