import type { TaskService } from '../core/task-service.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import { missingTool, runPipeline, type PipelineRun, type StepResult, type ToolFunction } from '../pipeline/run.js';
import { checkPipeline, resolveInputs, type Pipeline } from '../pipeline/spec.js';
import type { StoredRecord } from '../contracts/task-store.js';
import { forgetOldest, MAX_KEPT } from './batches.js';
import type { RunLine } from './dashboard/message.js';
import { readRecord, writeRecord } from './records.js';

/** What a run's watchers hear: a step that ended, then the run's end (the run as it ended). */
export type RunChange = { type: 'step'; step: StepResult } | { type: 'end'; run: ServerRun };

export interface ServerRun {
  id: string;
  tenant: string;
  pipeline: string;
  state: 'running' | 'completed' | 'failed' | 'cancelled';
  steps: string[];
  /** Steps that have ended so far, while the run goes on. */
  ended: Record<string, StepResult>;
  watchers: Set<(change: RunChange) => void>;
  result?: PipelineRun;
  error?: { code: string; message: string };
  /** Cancels the run while it goes on. */
  stop?: AbortController;
  createdAt: number;
}

/** What a run's record keeps: enough to answer for it, and to run it on after a crash. */
interface RunData {
  spec: unknown;
  inputs: Record<string, string>;
  steps: Record<string, StepResult>;
  result?: PipelineRun;
  error?: { code: string; message: string };
  /** When the process running it last said it was alive (epoch ms): written with every save while it runs. */
  aliveAt?: number;
}

/** How often a process says the runs it runs are alive, on a store other processes share. */
export const RUN_HEARTBEAT_MS = 5_000;
/** How long a run may go without a word from the process running it before another process takes it over. */
export const RUN_STALE_MS = 15_000;
/** How often a run going on in another process is read again for its watchers here. */
export const RUN_POLL_MS = 1_000;

/**
 * Pipeline runs started over HTTP: the pipeline is checked and its inputs
 * resolved before the run starts (a bad pipeline is a 400, nothing runs),
 * then it runs on the server's engine under the tenant's name. With a store,
 * a run is a record (its pipeline, inputs and each step as it ends) written
 * before it is acknowledged: its id answers after a restart, and a run cut
 * short goes on from the steps that had ended, each call under a stable id so
 * that one already answered is not paid for again.
 */
export class RunRegistry {
  private readonly recent = new Map<string, ServerRun>();
  /** Runs going on in this process, never forgotten while they go. */
  private readonly live = new Map<string, ServerRun>();
  /** What each run going on here keeps in its record. */
  private readonly liveData = new Map<string, RunData>();
  private counter = 0;

  constructor(
    private readonly engine: TaskService,
    /** Told of each run that finished, with its tenant, for metrics and the dashboard. */
    private readonly onFinished: (result: PipelineRun, tenant: string) => void = () => {},
    /** The functions tool steps and agent steps may call. */
    private readonly tools: Readonly<Record<string, ToolFunction>> = {},
  ) {}

  async start(tenant: string, body: unknown): Promise<ServerRun> {
    if (typeof body !== 'object' || body === null)
      throw new FanoutError('invalid_request', '(root): expected {"pipeline": {...}, "inputs": {...}}');
    const { pipeline: spec, inputs } = body as { pipeline?: unknown; inputs?: unknown };
    const pipeline = checkPipeline(spec, 'pipeline');
    if (
      inputs !== undefined &&
      (typeof inputs !== 'object' || inputs === null || Object.values(inputs).some((v) => typeof v !== 'string'))
    ) {
      throw new FanoutError('invalid_request', 'inputs: expected an object of strings');
    }
    resolveInputs(pipeline, (inputs ?? {}) as Record<string, string>);
    const missing = missingTool(pipeline, this.tools);
    if (missing)
      throw new FanoutError('invalid_request', `pipeline: ${missing} on this server (fanout serve --tools <module>)`);
    const id = `run_${Math.floor(this.engine.clock.now()).toString(36)}${(this.counter++).toString(36)}`;
    const run: ServerRun = {
      id,
      tenant,
      pipeline: pipeline.name,
      state: 'running',
      steps: pipeline.order,
      ended: {},
      watchers: new Set(),
      createdAt: this.engine.clock.now(),
    };
    const data: RunData = { spec, inputs: (inputs ?? {}) as Record<string, string>, steps: {} };
    await this.save(run, data);
    this.keep(run);
    this.execute(run, pipeline, data);
    return run;
  }

  /** A tenant's run, from memory or the store; another tenant's is as unknown as a missing one. */
  async get(tenant: string, id: string): Promise<ServerRun | undefined> {
    const kept = this.live.get(id) ?? this.recent.get(id);
    // A run going on in another process (a shared store) is read again: only its record says how far it got.
    const run = kept && (kept.state !== 'running' || this.live.has(id)) ? kept : await this.load(id);
    return run && run.tenant === tenant ? run : undefined;
  }

  /**
   * Runs a crash cut short go on from the steps that had ended. On a store
   * other live processes share (`shared`), only runs no process has said are
   * alive for `RUN_STALE_MS`: their process died.
   */
  async resume(shared = false): Promise<number> {
    const store = this.engine.store;
    if (!store) return 0;
    const now = this.engine.clock.now();
    const open = (await store.openRecords('run')).filter((record) => {
      const aliveAt = (record.data as RunData).aliveAt;
      return !this.live.has(record.id) && (!shared || aliveAt === undefined || now - aliveAt >= RUN_STALE_MS);
    });
    for (const record of open) {
      const run = this.fromRecord(record);
      const data = record.data as RunData;
      this.keep(run);
      try {
        this.execute(run, checkPipeline(data.spec, 'pipeline'), data);
      } catch (error) {
        const e = asFanoutError(error);
        await this.end(run, data, { state: 'failed', error: { code: e.code, message: e.message } });
      }
    }
    return open.length;
  }

  /**
   * On a store other processes share: says every `RUN_HEARTBEAT_MS` that the
   * runs going on here are alive, and takes over the runs of processes that
   * stopped saying so. Returns the stop. Two processes may take over one run
   * at once: both run it to its end, each call still made once (calls are
   * submitted under ids of their run, step and item).
   */
  watchShared(): () => void {
    let cancel: (() => void) | undefined;
    let stopped = false;
    const beat = async (): Promise<void> => {
      await Promise.all(
        [...this.live.values()].map((run) => {
          const data = this.liveData.get(run.id);
          return data ? this.save(run, data).catch(() => undefined) : undefined;
        }),
      );
      await this.resume(true).catch(() => 0);
      if (!stopped) cancel = this.engine.clock.setTimer(RUN_HEARTBEAT_MS, () => void beat());
    };
    cancel = this.engine.clock.setTimer(RUN_HEARTBEAT_MS, () => void beat());
    return () => {
      stopped = true;
      cancel?.();
    };
  }

  /**
   * Tells `watcher` of each step of `run` as it ends, then of the run's end;
   * returns the stop. A run going on in another process (a shared store) is
   * read again from its record every `RUN_POLL_MS`.
   */
  watch(run: ServerRun, watcher: (change: RunChange) => void): () => void {
    if (this.live.has(run.id) || run.state !== 'running') {
      run.watchers.add(watcher);
      return () => run.watchers.delete(watcher);
    }
    const told = new Set(Object.keys(run.ended));
    let stopped = false;
    let cancel: (() => void) | undefined;
    const look = async (): Promise<void> => {
      const now = await this.load(run.id).catch(() => undefined);
      if (stopped) return;
      for (const [name, step] of Object.entries(now?.result?.steps ?? now?.ended ?? {})) {
        if (told.has(name)) continue;
        told.add(name);
        watcher({ type: 'step', step });
      }
      if (now && now.state !== 'running') return watcher({ type: 'end', run: now });
      cancel = this.engine.clock.setTimer(RUN_POLL_MS, () => void look());
    };
    cancel = this.engine.clock.setTimer(RUN_POLL_MS, () => void look());
    return () => {
      stopped = true;
      cancel?.();
    };
  }

  /** Cancels a run that goes on: its calls in flight are cancelled and its later steps skipped. */
  cancel(run: ServerRun): void {
    run.stop?.abort();
  }

  private execute(run: ServerRun, pipeline: Pipeline, data: RunData): void {
    const tell = (change: RunChange): void => {
      for (const watcher of run.watchers) watcher(change);
    };
    const onStepEnd = (step: StepResult): void => {
      run.ended[step.name] = step;
      data.steps[step.name] = step;
      void this.save(run, data);
      tell({ type: 'step', step });
    };
    run.stop = new AbortController();
    this.live.set(run.id, run);
    this.liveData.set(run.id, data);
    const callId = ({
      step,
      index,
      model,
      fallback,
      turn,
    }: {
      step: string;
      index?: number;
      model: string;
      fallback: boolean;
      turn: number;
    }) =>
      `${run.id}:${step}${index === undefined ? '' : `[${index}]`}:${model}${fallback ? ':fallback' : ''}${turn > 1 ? `#${turn}` : ''}`;
    runPipeline(this.engine, pipeline, {
      inputs: data.inputs,
      tools: this.tools,
      tenant: run.tenant,
      onStepEnd,
      resumeSteps: data.steps,
      callId,
      signal: run.stop.signal,
    }).then(
      async (result) => {
        run.result = result;
        const cancelled = run.stop?.signal.aborted === true;
        this.onFinished(result, run.tenant);
        await this.end(run, data, { state: result.ok ? 'completed' : cancelled ? 'cancelled' : 'failed' });
        tell({ type: 'end', run });
      },
      async (error: unknown) => {
        const e = asFanoutError(error);
        await this.end(run, data, { state: 'failed', error: { code: e.code, message: e.message } });
        tell({ type: 'end', run });
      },
    );
  }

  private async end(
    run: ServerRun,
    data: RunData,
    end: { state: ServerRun['state']; error?: { code: string; message: string } },
  ): Promise<void> {
    run.state = end.state;
    if (end.error) run.error = end.error;
    run.stop = undefined;
    this.live.delete(run.id);
    this.liveData.delete(run.id);
    data.result = run.result;
    if (end.error) data.error = end.error;
    await this.save(run, data);
  }

  private keep(run: ServerRun): void {
    this.recent.set(run.id, run);
    forgetOldest(this.recent, MAX_KEPT);
  }

  private async save(run: ServerRun, data: RunData): Promise<void> {
    if (run.state === 'running') data.aliveAt = this.engine.clock.now();
    await writeRecord(this.engine, 'run', run, data);
  }

  private async load(id: string): Promise<ServerRun | undefined> {
    const record = await readRecord(this.engine, 'run', id);
    if (!record) return undefined;
    const run = this.fromRecord(record);
    this.keep(run);
    return run;
  }

  private fromRecord(record: StoredRecord): ServerRun {
    const data = record.data as RunData;
    const steps = data.result
      ? Object.keys(data.result.steps)
      : Object.keys((data.spec as { steps?: object } | undefined)?.steps ?? {});
    return {
      id: record.id,
      tenant: record.tenant,
      pipeline: data.result?.pipeline ?? 'pipeline',
      state: record.state as ServerRun['state'],
      steps,
      ended: { ...data.steps },
      watchers: new Set(),
      ...(data.result ? { result: data.result } : {}),
      ...(data.error ? { error: data.error } : {}),
      createdAt: record.createdAt,
    };
  }

  /** The tenant's latest runs known here, newest first, each with its steps' states (`LISTED_RUNS` at most). */
  list(tenant: string): RunLine[] {
    const runs = new Map([...this.recent, ...this.live]);
    return [...runs.values()]
      .filter((run) => run.tenant === tenant)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, LISTED_RUNS)
      .map((run) => ({
        id: run.id,
        pipeline: run.pipeline,
        state: run.state,
        createdAt: run.createdAt,
        ...(run.result ? { wallMs: run.result.wallMs } : {}),
        steps: this.stepStates(run),
      }));
  }

  /** Each step's state so far: `pending` until it ends. */
  stepStates(run: ServerRun): Record<string, string> {
    return Object.fromEntries(run.steps.map((name) => [name, this.stepOf(run, name)?.state ?? 'pending']));
  }

  private stepOf(run: ServerRun, name: string): StepResult | undefined {
    return run.result?.steps[name] ?? run.ended[name];
  }

  /**
   * A run as `GET /v1/runs/:id` shows it: each step's state and output, with
   * list outputs (split, forEach) cut to their first `VIEW_ITEMS` items and the
   * timeline to its first `VIEW_CALLS` calls; the rest are read a page at a
   * time (`items`, `calls`), so no answer grows with the size of a run.
   */
  view(run: ServerRun): Record<string, unknown> {
    const steps = Object.fromEntries(
      run.steps.map((name) => {
        const step = this.stepOf(run, name);
        if (!step) return [name, { state: 'pending' }];
        const output = Array.isArray(step.output) ? step.output.slice(0, VIEW_ITEMS) : step.output;
        const items = Array.isArray(step.output) ? { outputItems: step.output.length } : {};
        return [
          name,
          { state: step.state, output, ...items, error: step.error, usage: step.usage, costUsd: step.costUsd },
        ];
      }),
    );
    const calls = run.result?.calls;
    return {
      id: run.id,
      pipeline: run.pipeline,
      state: run.state,
      steps,
      error: run.error,
      wallMs: run.result?.wallMs,
      costUsd: run.result?.costUsd,
      timeline: calls?.slice(0, VIEW_CALLS),
      timelineCalls: calls?.length,
      tools: run.result?.tools.slice(0, VIEW_CALLS),
    };
  }

  /** One page of a list step's output items. */
  items(
    run: ServerRun,
    stepName: string,
    page: Page,
  ): { step: string; total: number; offset: number; items: string[] } {
    const step = this.stepOf(run, stepName);
    if (!run.steps.includes(stepName)) throw new FanoutError('unknown_task', `run ${run.id} has no step ${stepName}`);
    const all = step && Array.isArray(step.output) ? step.output : [];
    return {
      step: stepName,
      total: all.length,
      offset: page.offset,
      items: all.slice(page.offset, page.offset + page.limit),
    };
  }

  /** One page of the run's timeline of calls (complete once the run has ended). */
  calls(run: ServerRun, page: Page): { total: number; offset: number; calls: unknown[] } {
    const all = run.result?.calls ?? [];
    return { total: all.length, offset: page.offset, calls: all.slice(page.offset, page.offset + page.limit) };
  }
}

/** Runs one tenant's dashboard lists. */
export const LISTED_RUNS = 50;

/** List items and calls shown in a run's view; the rest are paged. */
export const VIEW_ITEMS = 100;
export const VIEW_CALLS = 1000;
/** Largest page of items or calls. */
export const MAX_PAGE = 1000;

export interface Page {
  offset: number;
  limit: number;
}

/** `?offset=&limit=` read and checked: whole numbers, a limit of 1 to `MAX_PAGE` (default `MAX_PAGE`). */
export function pageOf(query: unknown): Page {
  const { offset = '0', limit = String(MAX_PAGE) } = (query ?? {}) as { offset?: string; limit?: string };
  const o = Number(offset);
  const l = Number(limit);
  if (!Number.isInteger(o) || o < 0)
    throw new FanoutError(
      'invalid_request',
      `offset: expected a whole number ≥ 0, got ${JSON.stringify(offset).slice(0, 40)}`,
    );
  if (!Number.isInteger(l) || l < 1 || l > MAX_PAGE)
    throw new FanoutError(
      'invalid_request',
      `limit: expected a whole number from 1 to ${MAX_PAGE}, got ${JSON.stringify(limit).slice(0, 40)}`,
    );
  return { offset: o, limit: l };
}
