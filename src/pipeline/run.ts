import type { TaskHandle } from '../core/engine.js';
import type { TaskService } from '../core/task-service.js';
import { asFanoutError, FanoutError } from '../contracts/errors.js';
import type { TaskStatus } from '../core/task.js';
import {
  addUsage,
  ZERO_USAGE,
  type ChatMessage,
  type ModelResult,
  type TaskRequest,
  type ToolCall,
  type ToolDefinition,
  type Usage,
} from '../contracts/types.js';
import { countTextTokens } from '../limits/estimate.js';
import { splitByTokens } from './chunk.js';
import { DEFAULT_MAX_TURNS, resolveInputs, type CheckedStep, type Pipeline, type PipelineTool } from './spec.js';
import { MAX_PRIORITY } from '../core/validate.js';
import { render } from './template.js';

/**
 * A function a `tool` step calls, or a model calls in an agent step. Its
 * result becomes the step's output, or is handed back to the model (strings
 * as they are, anything else as JSON). A tool step passes its rendered `args`
 * (strings); a model passes the arguments it wrote (any JSON values).
 */
export type ToolFunction = (args: Record<string, any>, context: { item?: string; index?: number }) => unknown;

/** What names a tool that `tools` does not hold (`steps.<name>.tool: no tool "x" is registered`), if any step does. */
export function missingTool(pipeline: Pipeline, tools: Readonly<Record<string, ToolFunction>>): string | undefined {
  for (const [name, step] of pipeline.steps) {
    const wanted = step.kind === 'tool' ? [step.spec.tool as string] : (step.spec.tools ?? []);
    const missing = wanted.find((tool) => !tools[tool]);
    if (missing !== undefined)
      return `steps.${name}.${step.kind === 'tool' ? 'tool' : 'tools'}: no tool "${missing}" is registered`;
  }
  return undefined;
}

export interface RunPipelineOptions {
  inputs?: Readonly<Record<string, string>>;
  tools?: Readonly<Record<string, ToolFunction>>;
  /**
   * Expected milliseconds of one call on a model, for critical-path priority.
   * A step's own `expectedMs` comes first; without this function, the mean of
   * the engine's calls on the model so far, else 1,000.
   */
  expectedCallMs?: (model: string) => number | undefined;
  /** Tool steps do not call their function: they take their `expectedMs` on the clock and output a placeholder. */
  simulateTools?: boolean;
  /** The tenant the run's calls belong to (their cache entries and visibility). */
  tenant?: string;
  /** Told of each step as it starts (after the steps it needs have ended). */
  onStepStart?: (step: string) => void;
  /** Told of each step as it ends (completed, failed or skipped), before the run ends. */
  onStepEnd?: (step: StepResult) => void;
  /** Longest prompt, system prompt or tool argument a template may render to, in characters. Default 1,000,000. */
  maxRenderedChars?: number;
  /** Most items one `forEach` step may fan out over (the step fails beyond it). Default 10,000. */
  maxForEachItems?: number;
  /**
   * Steps that ended in an earlier run of the same pipeline and inputs (a run
   * cut by a crash): they are not run again, their outputs are read as they were.
   */
  resumeSteps?: Readonly<Record<string, StepResult>>;
  /**
   * A stable id for each call (step, forEach index, model, whether it is the
   * fallback). With it, a call already made under that id, answered or still
   * going, is joined instead of made again (`Engine.submitOnce`).
   */
  callId?: (call: { step: string; index?: number; model: string; fallback: boolean; turn: number }) => string;
  /** Aborting stops the run: calls in flight are cancelled, later steps skipped, and the run fails `cancelled`. */
  signal?: AbortSignal;
}

/** Default bound on the items of one `forEach` step. */
export const DEFAULT_MAX_FOREACH_ITEMS = 10_000;

export type StepState = 'completed' | 'failed' | 'skipped';

export interface StepResult {
  name: string;
  state: StepState;
  /** A list for `split` and `forEach` steps. */
  output: string | string[];
  error?: { code: string; message: string };
  startedAt?: number;
  endedAt?: number;
  usage: Usage;
  /** US dollars, from the models' prices; 0 when none is configured. */
  costUsd: number;
}

/** One model call of a run, for the timeline. */
export interface CallSpan {
  /** The engine task that made the call. */
  taskId: string;
  step: string;
  item?: number;
  model: string;
  state: TaskStatus['state'];
  submittedAt: number;
  /** When the call that gave the answer started (after any queue, limit or retry wait). */
  startedAt?: number;
  endedAt: number;
  queuedMs: number;
  rateLimitedMs: number;
  providerMs: number;
  attempts: number;
  cached?: 'stored' | 'in-flight';
}

/** A span of a tool step, or of a tool an agent step's model called, in the same timeline. */
export interface ToolSpan {
  step: string;
  /** The tool a model called (an agent step); unset for a tool step. */
  tool?: string;
  item?: number;
  startedAt: number;
  endedAt: number;
}

export interface PipelineRun {
  pipeline: string;
  ok: boolean;
  startedAt: number;
  endedAt: number;
  wallMs: number;
  steps: Record<string, StepResult>;
  calls: CallSpan[];
  tools: ToolSpan[];
  usage: Usage;
  /** US dollars, from the models' prices (models without a price count 0). */
  costUsd: number;
  /** Models called that have no price, so the cost leaves them out. */
  unpricedModels: string[];
}

const DEFAULT_CALL_MS = 1000;

function failedText(step: string, error: { code: string; message: string }): string {
  return `[step ${step} failed: ${error.code}: ${error.message}]`;
}

/** What a pipeline runs on: an engine, or the queue shared through Redis. */
export type PipelineHost = Pick<TaskService, 'clock' | 'submit' | 'submitOnce' | 'priceOf' | 'averageCallMs'>;

/**
 * Runs a pipeline on an engine, sharing its limits with everything else in
 * flight. A step starts as soon as the steps it depends on have ended; steps
 * with no path between them run in parallel. Every call is submitted with
 * its step's critical-path priority (the expected time from the step's start
 * to the end of the pipeline), so when limits bind, the calls on the longest
 * remaining path go first.
 */
export async function runPipeline(
  engine: PipelineHost,
  pipeline: Pipeline,
  options: RunPipelineOptions = {},
): Promise<PipelineRun> {
  return new PipelineRunner(engine, pipeline, options).run();
}

class PipelineRunner {
  private readonly inputs: Record<string, string>;
  private readonly results: Record<string, StepResult> = {};
  /** What `{{ steps.x.output }}` reads, set once when step x ends: a list joined by blank lines, a failure spelled out. */
  private readonly outputs: Record<string, string> = {};
  private readonly calls: CallSpan[] = [];
  private readonly tools: ToolSpan[] = [];
  private readonly priority = new Map<string, number>();
  private readonly live = new Set<TaskHandle>();
  private readonly unpriced = new Set<string>();
  private failed?: FanoutError;

  constructor(
    private readonly engine: PipelineHost,
    private readonly pipeline: Pipeline,
    private readonly options: RunPipelineOptions,
  ) {
    this.inputs = resolveInputs(pipeline, options.inputs ?? {});
    const missing = options.simulateTools ? undefined : missingTool(pipeline, options.tools ?? {});
    if (missing) throw new FanoutError('invalid_config', `${pipeline.name}: ${missing}`);
    this.computePriorities();
  }

  async run(): Promise<PipelineRun> {
    const startedAt = this.engine.clock.now();
    const { signal } = this.options;
    const stop = (): void => this.fail(new FanoutError('cancelled', `the run of ${this.pipeline.name} was cancelled`));
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    const running = new Map<string, Promise<void>>();
    const start = (name: string): Promise<void> => {
      let started = running.get(name);
      if (!started) {
        const step = this.pipeline.steps.get(name) as CheckedStep;
        started = Promise.all(step.dependsOn.map(start)).then(() => this.runStep(step));
        running.set(name, started);
      }
      return started;
    };
    await Promise.all(this.pipeline.order.map(start));
    signal?.removeEventListener('abort', stop);
    const endedAt = this.engine.clock.now();
    let usage: Usage = { ...ZERO_USAGE };
    let costUsd = 0;
    for (const result of Object.values(this.results)) {
      usage = addUsage(usage, result.usage);
      costUsd += result.costUsd;
    }
    return {
      pipeline: this.pipeline.name,
      ok: this.failed === undefined,
      startedAt,
      endedAt,
      wallMs: endedAt - startedAt,
      steps: this.results,
      calls: this.calls.sort(
        (a, b) => a.submittedAt - b.submittedAt || a.step.localeCompare(b.step) || (a.item ?? 0) - (b.item ?? 0),
      ),
      tools: this.tools,
      usage,
      costUsd,
      unpricedModels: [...this.unpriced].sort(),
    };
  }

  /** Expected time from each step's start to the end of the pipeline, along its longest path. */
  private computePriorities(): void {
    const successors = new Map<string, string[]>();
    for (const step of this.pipeline.steps.values()) {
      for (const dep of step.dependsOn) successors.set(dep, [...(successors.get(dep) ?? []), step.name]);
    }
    for (const name of [...this.pipeline.order].reverse()) {
      const step = this.pipeline.steps.get(name) as CheckedStep;
      const after = Math.max(0, ...(successors.get(name) ?? []).map((s) => this.priority.get(s) ?? 0));
      this.priority.set(name, this.expectedMs(step) + after);
    }
  }

  private expectedMs(step: CheckedStep): number {
    if (step.spec.expectedMs !== undefined) return step.spec.expectedMs;
    if (step.kind !== 'llm') return 0;
    const models = step.spec.models ?? [step.spec.model as string];
    return Math.max(
      ...models.map(
        (model) => this.options.expectedCallMs?.(model) ?? this.engine.averageCallMs(model) ?? DEFAULT_CALL_MS,
      ),
    );
  }

  private async runStep(step: CheckedStep): Promise<void> {
    const earlier = this.options.resumeSteps?.[step.name];
    if (earlier && earlier.state !== 'skipped') {
      this.results[step.name] = earlier;
      if (earlier.state === 'failed' && this.policyOf(step.name) === 'fail')
        this.fail(
          new FanoutError(
            (earlier.error?.code ?? 'server_error') as FanoutError['code'],
            earlier.error?.message ?? 'failed',
          ),
        );
      this.publish(step, earlier);
      return;
    }
    const result: StepResult = { name: step.name, state: 'skipped', output: '', usage: { ...ZERO_USAGE }, costUsd: 0 };
    this.results[step.name] = result;
    const blocked = step.dependsOn.find(
      (dep) =>
        this.results[dep]?.state === 'skipped' ||
        (this.results[dep]?.state === 'failed' && this.policyOf(dep) === 'fail'),
    );
    if (this.failed || blocked) {
      result.output = `[step ${step.name} skipped: ${blocked ? `step ${blocked} did not complete` : 'the pipeline failed'}]`;
      this.outputs[step.name] = result.output;
      this.options.onStepEnd?.(result);
      return;
    }
    result.startedAt = this.engine.clock.now();
    this.options.onStepStart?.(step.name);
    try {
      if (step.kind === 'split') result.output = this.split(step);
      else if (step.kind === 'merge') result.output = this.merge(step);
      else if (step.spec.forEach !== undefined) {
        const source = step.spec.forEach;
        const items = typeof source === 'string' ? this.results[source]?.output : source;
        const list = Array.isArray(items) ? items : [];
        const maxItems = this.options.maxForEachItems ?? DEFAULT_MAX_FOREACH_ITEMS;
        if (list.length > maxItems)
          throw new FanoutError(
            'invalid_request',
            `steps.${step.name}.forEach: ${list.length.toLocaleString('en-US')} items; a step may fan out over at most ${maxItems.toLocaleString('en-US')}`,
          );
        const first =
          step.spec.primeCache && list.length > 1 ? [await this.once(step, result, { item: list[0], index: 0 })] : [];
        const rest = await Promise.all(
          list.slice(first.length).map((item, i) => this.once(step, result, { item, index: i + first.length })),
        );
        result.output = [...first, ...rest];
      } else {
        result.output = await this.once(step, result, {});
      }
      result.state = 'completed';
    } catch (raw) {
      const error = asFanoutError(raw);
      result.state = 'failed';
      result.error = { code: error.code, message: error.message };
      result.output = failedText(step.name, result.error);
      if (this.policyOf(step.name) === 'fail') this.fail(error);
    }
    result.endedAt = this.engine.clock.now();
    this.publish(step, result);
    this.options.onStepEnd?.(result);
  }

  /** Makes an ended step's output what later templates read. */
  private publish(step: CheckedStep, result: StepResult): void {
    this.outputs[step.name] = Array.isArray(result.output) ? result.output.join('\n\n') : result.output;
    // A judge's verdict becomes the output of the ensemble it judged.
    for (const other of this.pipeline.steps.values()) {
      if (other.spec.combine === step.name && result.state === 'completed')
        this.outputs[other.name] = this.outputs[step.name] as string;
    }
  }

  private policyOf(name: string): 'fail' | 'continue' | 'fallback' {
    const onError = this.pipeline.steps.get(name)?.spec.onError ?? 'fail';
    return typeof onError === 'string' ? onError : 'fallback';
  }

  /** The first failure that stops the pipeline cancels every call still running. */
  private fail(error: FanoutError): void {
    if (this.failed) return;
    this.failed = error;
    for (const handle of this.live) handle.cancel();
  }

  private split(step: CheckedStep): string[] {
    const { from, maxTokens, overlapTokens, boundary } = step.spec.split as NonNullable<CheckedStep['spec']['split']>;
    const source = this.results[from]?.output ?? this.inputs[from] ?? '';
    const text = Array.isArray(source) ? source.join('\n') : source;
    return splitByTokens(text, { maxTokens, overlapTokens, boundary }, countTextTokens);
  }

  /** A template of a step filled in, within the run's bound; an error names the step and field. */
  private render(step: CheckedStep, field: string, template: string, values: Parameters<typeof render>[1]): string {
    try {
      return render(template, values, this.options.maxRenderedChars);
    } catch (error) {
      const e = asFanoutError(error);
      throw new FanoutError(e.code, `steps.${step.name}.${field}: ${e.message}`);
    }
  }

  /** Runs a step once (for one item of a forEach): a tool, a call, or an ensemble of calls. */
  private async once(step: CheckedStep, result: StepResult, scope: { item?: string; index?: number }): Promise<string> {
    const values = { inputs: this.inputs, steps: this.outputs, ...scope };
    if (step.kind === 'tool') return this.tool(step, values, scope);
    const spec = step.spec;
    const models = spec.models ?? [spec.model as string];
    const texts = await Promise.all(
      models.map(async (model) => {
        const request: TaskRequest = {
          model,
          messages: [{ role: 'user', content: this.render(step, 'prompt', spec.prompt as string, values) }],
          priority: Math.min(MAX_PRIORITY, this.priority.get(step.name) ?? 0),
          label: scope.index === undefined ? step.name : `${step.name}[${scope.index}]`,
        };
        if (this.options.tenant !== undefined) request.tenant = this.options.tenant;
        if (spec.system !== undefined) request.system = this.render(step, 'system', spec.system, values);
        if (spec.maxTokens !== undefined) request.maxTokens = spec.maxTokens;
        if (spec.temperature !== undefined) request.temperature = spec.temperature;
        if (spec.cache !== undefined) request.cache = spec.cache;
        if (spec.latency !== undefined) request.latency = spec.latency;
        if (spec.schema !== undefined)
          request.responseFormat = {
            type: 'json_schema',
            name: step.name.replace(/[^\w-]/g, '_'),
            schema: spec.schema,
          };
        const fallback = typeof spec.onError === 'object' ? spec.onError.fallback : undefined;
        const answer = await this.converse(step, scope, request, result, false).catch((error: unknown) => {
          if (!fallback || this.failed) throw error;
          return this.converse(step, scope, { ...request, model: fallback }, result, true);
        });
        return answer.text;
      }),
    );
    if (models.length === 1) return texts[0] as string;
    // A judge step combines later; until then the candidates stand side by side.
    return combine(spec.combine === 'vote' ? 'vote' : 'concat', models, texts);
  }

  /**
   * One call, or for an agent step a conversation: each tool the model calls
   * is run and its result handed back, until it answers without calling one
   * or `maxTurns` calls have been made (the step then fails).
   */
  private async converse(
    step: CheckedStep,
    scope: { item?: string; index?: number },
    request: TaskRequest,
    result: StepResult,
    fallback: boolean,
  ): Promise<ModelResult> {
    const names = step.spec.tools;
    if (!names) return this.call(step.name, scope.index, request, result, fallback, 1);
    const tools = names.map((name) => ({ name, ...toolDefinition(this.pipeline.tools[name]) }));
    const messages: ChatMessage[] = [...request.messages];
    const maxTurns = step.spec.maxTurns ?? DEFAULT_MAX_TURNS;
    for (let turn = 1; ; turn++) {
      const ask = { ...request, messages: [...messages], tools };
      const answer = await this.call(step.name, scope.index, ask, result, fallback, turn);
      if (!answer.toolCalls?.length) return answer;
      if (turn >= maxTurns)
        throw new FanoutError(
          'invalid_output',
          `steps.${step.name}: the model still called tools after ${maxTurns} turns (maxTurns)`,
        );
      messages.push({
        role: 'assistant',
        content: answer.text,
        toolCalls: answer.toolCalls,
        ...(answer.reasoning ? { reasoning: answer.reasoning } : {}),
      });
      for (const toolCall of answer.toolCalls)
        messages.push({ role: 'tool', toolCallId: toolCall.id, content: await this.answerTool(step, toolCall, scope) });
    }
  }

  /** Runs a tool a model called; what it returns, or why it failed, is what the model is handed back. */
  private async answerTool(
    step: CheckedStep,
    toolCall: ToolCall,
    scope: { item?: string; index?: number },
  ): Promise<string> {
    const startedAt = this.engine.clock.now();
    let output: string;
    try {
      const args: unknown = JSON.parse(toolCall.arguments);
      if (typeof args !== 'object' || args === null || Array.isArray(args))
        throw new Error('the arguments are not a JSON object');
      if (this.options.simulateTools) {
        await this.engine.clock.sleep(this.pipeline.tools[toolCall.name]?.expectedMs ?? 0);
        output = `[simulated ${toolCall.name}]`;
      } else {
        const value = await (this.options.tools?.[toolCall.name] as ToolFunction)(
          args as Record<string, unknown>,
          scope,
        );
        output = typeof value === 'string' ? value : JSON.stringify(value);
      }
    } catch (error) {
      output = `error: ${error instanceof Error ? error.message : String(error)}`;
    }
    this.tools.push({
      step: step.name,
      tool: toolCall.name,
      item: scope.index,
      startedAt,
      endedAt: this.engine.clock.now(),
    });
    return output;
  }

  /** A merge step: the JSON answers of a list step as one JSON value. */
  private merge(step: CheckedStep): string {
    const source = step.spec.merge as string;
    const items = this.results[source]?.output;
    const values = (Array.isArray(items) ? items : [items ?? '']).map((text, i) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new FanoutError('invalid_output', `steps.${step.name}.merge: item ${i} of "${source}" is not JSON`);
      }
    });
    return JSON.stringify(mergeJson(values));
  }

  private async call(
    step: string,
    index: number | undefined,
    request: TaskRequest,
    result: StepResult,
    fallback: boolean,
    turn: number,
  ): Promise<ModelResult> {
    const { callId } = this.options;
    const handle = callId
      ? await this.engine.submitOnce(request, { id: callId({ step, index, model: request.model, fallback, turn }) })
      : this.engine.submit(request);
    if (this.failed) handle.cancel();
    this.live.add(handle);
    try {
      const answer = await handle.result();
      if (!answer.cache) {
        result.usage = addUsage(result.usage, answer.usage);
        const cost = this.engine.priceOf(request.model, answer.usage);
        if (cost === undefined) this.unpriced.add(request.model);
        else result.costUsd += cost;
      }
      return answer;
    } finally {
      this.live.delete(handle);
      const status = handle.status();
      const last = status.attempts.at(-1);
      this.calls.push({
        taskId: handle.id,
        step,
        item: index,
        model: request.model,
        state: status.state,
        submittedAt: status.submittedAt,
        startedAt: last?.startedAt,
        endedAt: status.endedAt ?? this.engine.clock.now(),
        queuedMs: status.timing.queuedMs,
        rateLimitedMs: status.timing.rateLimitedMs,
        providerMs: status.timing.providerMs,
        attempts: status.attempts.length,
        cached: status.result?.cache?.source,
      });
    }
  }

  private async tool(
    step: CheckedStep,
    values: Parameters<typeof render>[1],
    scope: { item?: string; index?: number },
  ): Promise<string> {
    const startedAt = this.engine.clock.now();
    const args = Object.fromEntries(
      Object.entries(step.spec.args ?? {}).map(([key, template]) => [
        key,
        this.render(step, `args.${key}`, template, values),
      ]),
    );
    let output: string;
    if (this.options.simulateTools) {
      await this.engine.clock.sleep(step.spec.expectedMs ?? 0);
      output = `[simulated ${step.spec.tool}]`;
    } else {
      const fn = this.options.tools?.[step.spec.tool as string] as ToolFunction;
      const value = await fn(args, scope);
      output = typeof value === 'string' ? value : JSON.stringify(value);
    }
    this.tools.push({ step: step.name, item: scope.index, startedAt, endedAt: this.engine.clock.now() });
    return output;
  }
}

/** A pipeline tool as a request's tool definition. */
function toolDefinition(tool: PipelineTool | undefined): Omit<ToolDefinition, 'name'> {
  const definition: Omit<ToolDefinition, 'name'> = {
    parameters: tool?.parameters ?? { type: 'object', properties: {} },
  };
  if (tool?.description !== undefined) definition.description = tool.description;
  return definition;
}

/**
 * JSON answers as one value: lists joined into one list; objects into one
 * object whose keys hold, for lists, the lists joined, and for anything else
 * each answer's value in turn; anything else, a list of the answers.
 */
export function mergeJson(values: readonly unknown[]): unknown {
  if (values.every(Array.isArray)) return (values as unknown[][]).flat();
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!values.every(isObject)) return [...values];
  const merged: Record<string, unknown> = {};
  const keys = new Set(values.flatMap((v) => Object.keys(v)));
  for (const key of keys) {
    const present = values.filter((v) => key in v).map((v) => v[key]);
    merged[key] = present.every(Array.isArray) ? (present as unknown[][]).flat() : present;
  }
  return merged;
}

/** An ensemble's answers as one: all of them (`concat`), or the one most models gave (`vote`; ties go to the earlier model). */
export function combine(how: 'concat' | 'vote', models: readonly string[], texts: readonly string[]): string {
  if (how === 'concat') return texts.map((text, i) => `[${models[i]}]\n${text}`).join('\n\n');
  const counts = new Map<string, number>();
  for (const text of texts) counts.set(text.trim(), (counts.get(text.trim()) ?? 0) + 1);
  let best = texts[0]?.trim() ?? '';
  for (const text of texts) if ((counts.get(text.trim()) ?? 0) > (counts.get(best) ?? 0)) best = text.trim();
  return best;
}
