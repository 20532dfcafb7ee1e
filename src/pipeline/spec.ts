import { z } from 'zod';
import { describeIssues, ValidationError } from '../contracts/errors.js';
import { fanoutConfigSchema } from '../config/schema.js';
import { templateRefs } from './template.js';

const stepName = z.string().regex(/^[\w-]+$/, 'expected a step name (letters, digits, _ and -)');
const modelName = z.string().regex(/^[A-Za-z0-9_-]+:.+$/, 'expected "provider:model"');

/** Most model calls of one agent step. */
export const MAX_TURNS = 32;
export const DEFAULT_MAX_TURNS = 8;

const onErrorSchema = z.union([z.enum(['fail', 'continue']), z.strictObject({ fallback: modelName })]);

/** One step of a pipeline. Exactly one of `model`/`models` (an LLM call), `split` or `tool` says what it does. */
export const stepSchema = z.strictObject({
  /** Steps that must end before this one starts (steps named in its templates are added). */
  needs: z.array(stepName).optional(),
  /** Run this step once per item: of a list step's output (a `split`, or another `forEach`), or of a list given here. */
  forEach: z.union([stepName, z.array(z.string()).min(1, 'expected at least one item')]).optional(),
  /**
   * In a `forEach` step: send the first item's call alone, and the others once
   * it has ended, so that they find the provider's prompt cache written for
   * the prefix they share.
   */
  primeCache: z.boolean().optional(),
  onError: onErrorSchema.optional(),
  /** Expected duration in ms, for critical-path priority and for simulating tool steps. */
  expectedMs: z.number().min(0).optional(),

  model: modelName.optional(),
  /** An ensemble: the same call on each model, combined by `combine`. */
  models: z.array(modelName).min(2, 'an ensemble needs at least two models').optional(),
  /** How an ensemble's answers become one: all side by side, the most common, or a judge step's verdict (a step name). */
  combine: z.union([z.enum(['concat', 'vote']), stepName]).optional(),
  system: z.string().optional(),
  prompt: z.string().optional(),
  maxTokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  cache: z.union([z.boolean(), z.strictObject({ ttlMs: z.number().positive().optional() })]).optional(),
  /** `optimized` asks providers that offer it (Bedrock) for latency-optimised inference. */
  latency: z.enum(['standard', 'optimized']).optional(),

  /** Cut a text into chunks of at most `maxTokens`, on line boundaries where possible. */
  split: z
    .strictObject({
      /** The text: an input name or a step name. */
      from: z.string().min(1),
      maxTokens: z.number().int().positive(),
      overlapTokens: z.number().int().min(0).optional(),
      /**
       * Lines that start with this text start a block to keep whole, e.g. "diff --git".
       * A literal prefix, never a regular expression: no pattern from a request is ever compiled.
       */
      boundary: z
        .string()
        .min(1, 'expected the text that starts a block, e.g. "diff --git"')
        .max(200, 'expected at most 200 characters')
        .refine(
          (prefix) => !prefix.startsWith('^'),
          'expected the literal text that starts a block, e.g. "diff --git" (not a regular expression: no "^")',
        )
        .optional(),
    })
    .optional(),

  /**
   * An agent step: tools (defined under the pipeline's `tools`) the model may
   * call. Each call runs the registered function of that name and hands its
   * result back, until the model answers without calling one.
   */
  tools: z.array(z.string().min(1)).min(1, 'expected at least one tool').max(128, 'at most 128 tools').optional(),
  /** Most model calls an agent step makes, the first included. Default 8, at most 32. */
  maxTurns: z.number().int().min(1).max(MAX_TURNS, `at most ${MAX_TURNS} turns`).optional(),
  /** The answer is JSON that matches this JSON Schema, checked before the step completes. */
  schema: z.record(z.string(), z.unknown()).optional(),
  /** Merge the JSON answers of a list step (a `forEach`) into one JSON value: arrays under the same key joined. */
  merge: stepName.optional(),

  /** Call a function registered with the runner. */
  tool: z.string().min(1).optional(),
  /** The tool's arguments; string values are templates. */
  args: z.record(z.string(), z.string()).optional(),
});

export type StepSpec = z.infer<typeof stepSchema>;

const inputsSchema = z.union([
  z.array(z.string().regex(/^[\w-]+$/)),
  z.record(
    z.string().regex(/^[\w-]+$/),
    z.strictObject({
      description: z.string().optional(),
      default: z.string().optional(),
      /** A file (relative to the pipeline file) whose text is the default. */
      defaultFile: z.string().optional(),
    }),
  ),
]);

/** A tool a model may call in an agent step: what the model is told of it. The function is registered with the runner under its name. */
const toolDefinitionSchema = z.strictObject({
  description: z.string().optional(),
  /** JSON Schema of its arguments. */
  parameters: z.record(z.string(), z.unknown()).optional(),
  /** Expected duration in ms, for simulating the agent step. */
  expectedMs: z.number().min(0).optional(),
});

export const pipelineSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  inputs: inputsSchema.optional(),
  /** Tools the model may call in agent steps, by name (letters, digits, _ and -, as providers require). */
  tools: z
    .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 letters, digits, _ or -'), toolDefinitionSchema)
    .refine((tools) => Object.keys(tools).length <= 128, 'at most 128 tools')
    .optional(),
  steps: z.record(stepName, stepSchema).refine((steps) => Object.keys(steps).length > 0, 'expected at least one step'),
});

export type PipelineSpec = z.infer<typeof pipelineSchema>;

/** A pipeline file: one pipeline (`steps`), or several (`pipelines`) to compare, with an optional fanout config. */
export const pipelineFileSchema = z.union([
  pipelineSchema.extend({ config: fanoutConfigSchema.optional() }),
  z.strictObject({
    config: fanoutConfigSchema.optional(),
    description: z.string().optional(),
    pipelines: z.record(z.string(), pipelineSchema),
  }),
]);

export type StepKind = 'llm' | 'split' | 'tool' | 'merge';

export type PipelineTool = z.infer<typeof toolDefinitionSchema>;

/** A checked pipeline: steps with their kind and every dependency, in a runnable order. */
export interface Pipeline {
  name: string;
  inputs: Record<string, { default?: string }>;
  /** Tools agent steps may call. */
  tools: Record<string, PipelineTool>;
  steps: Map<string, CheckedStep>;
  /** Step names such that every step comes after the steps it depends on. */
  order: string[];
}

export interface CheckedStep {
  name: string;
  kind: StepKind;
  spec: StepSpec;
  /** `needs`, steps named in templates, and the `forEach` source. */
  dependsOn: string[];
  /** True when the step's output is a list (a `split`, or a `forEach`). */
  isList: boolean;
}

function kindOf(name: string, step: StepSpec, issues: string[]): StepKind | undefined {
  const kinds: StepKind[] = [];
  if (step.model !== undefined || step.models !== undefined) kinds.push('llm');
  if (step.split !== undefined) kinds.push('split');
  if (step.tool !== undefined) kinds.push('tool');
  if (step.merge !== undefined) kinds.push('merge');
  if (kinds.length !== 1) {
    issues.push(
      `steps.${name}: expected exactly one of "model" (or "models"), "split", "tool" or "merge", found ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`,
    );
    return undefined;
  }
  const kind = kinds[0] as StepKind;
  if (kind === 'llm') {
    if (step.model !== undefined && step.models !== undefined)
      issues.push(`steps.${name}: expected "model" or "models", not both`);
    if (step.prompt === undefined) issues.push(`steps.${name}.prompt: an LLM step needs a prompt`);
  }
  if (step.combine !== undefined && step.models === undefined)
    issues.push(`steps.${name}.combine: only an ensemble ("models") is combined`);
  for (const field of ['tools', 'maxTurns', 'schema'] as const)
    if (step[field] !== undefined && kind !== 'llm') issues.push(`steps.${name}.${field}: only an LLM step takes it`);
  if (step.maxTurns !== undefined && step.tools === undefined)
    issues.push(`steps.${name}.maxTurns: only an agent step (one with tools) makes more than one call`);
  if (kind === 'merge' && step.forEach !== undefined)
    issues.push(`steps.${name}.forEach: a merge step merges a list once; it does not run per item`);
  return kind;
}

/** The templates of a step, with the field each one sits in. */
function templatesOf(step: StepSpec): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  if (step.prompt !== undefined) found.push(['prompt', step.prompt]);
  if (step.system !== undefined) found.push(['system', step.system]);
  for (const [arg, value] of Object.entries(step.args ?? {})) found.push([`args.${arg}`, value]);
  return found;
}

/**
 * Checks a pipeline before anything runs: every step of one kind, every
 * reference to a known input or step, `item` only in `forEach` steps, no
 * cycle. Throws a `ValidationError` naming each offending step and field.
 */
export function checkPipeline(input: unknown, name = 'pipeline'): Pipeline {
  const parsed = pipelineSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError('invalid_config', describeIssues(parsed.error, name));
  const spec = parsed.data;
  const issues: string[] = [];
  const inputs: Record<string, { default?: string }> = Array.isArray(spec.inputs)
    ? Object.fromEntries(spec.inputs.map((input) => [input, {}]))
    : { ...(spec.inputs ?? {}) };
  const names = new Set(Object.keys(spec.steps));
  const steps = new Map<string, CheckedStep>();
  for (const [stepName, step] of Object.entries(spec.steps)) {
    const kind = kindOf(stepName, step, issues);
    const dependsOn = new Set(step.needs ?? []);
    for (const need of step.needs ?? [])
      if (!names.has(need)) issues.push(`steps.${stepName}.needs: unknown step "${need}"`);
    if (typeof step.forEach === 'string') {
      if (!names.has(step.forEach)) issues.push(`steps.${stepName}.forEach: unknown step "${step.forEach}"`);
      dependsOn.add(step.forEach);
    }
    if (step.primeCache && step.forEach === undefined)
      issues.push(`steps.${stepName}.primeCache: only a forEach step sends one call first`);
    for (const tool of step.tools ?? [])
      if (!spec.tools?.[tool])
        issues.push(
          `steps.${stepName}.tools: unknown tool "${tool}"; defined tools: ${Object.keys(spec.tools ?? {}).join(', ') || '(none)'}`,
        );
    if (step.merge !== undefined) {
      if (names.has(step.merge)) dependsOn.add(step.merge);
      else issues.push(`steps.${stepName}.merge: unknown step "${step.merge}"`);
    }
    if (step.split) {
      const from = step.split.from;
      if (names.has(from)) dependsOn.add(from);
      else if (!(from in inputs)) issues.push(`steps.${stepName}.split.from: "${from}" is neither an input nor a step`);
    }
    for (const [field, template] of templatesOf(step)) {
      for (const ref of templateRefs(template)) {
        if (ref.kind === 'unknown')
          issues.push(
            `steps.${stepName}.${field}: unknown template variable "{{ ${ref.text} }}"; expected inputs.<name>, steps.<name>.output, item or index`,
          );
        else if (ref.kind === 'input' && !(ref.name in inputs))
          issues.push(
            `steps.${stepName}.${field}: unknown input "${ref.name}"; declared inputs: ${Object.keys(inputs).join(', ') || '(none)'}`,
          );
        else if (ref.kind === 'step' && !names.has(ref.name))
          issues.push(`steps.${stepName}.${field}: unknown step "${ref.name}"`);
        else if (ref.kind === 'step' && ref.name === stepName)
          issues.push(`steps.${stepName}.${field}: a step cannot read its own output`);
        else if (ref.kind === 'step') dependsOn.add(ref.name);
        else if ((ref.kind === 'item' || ref.kind === 'index') && step.forEach === undefined)
          issues.push(`steps.${stepName}.${field}: "{{ ${ref.kind} }}" is only known in a forEach step`);
      }
    }
    if (kind)
      steps.set(stepName, {
        name: stepName,
        kind,
        spec: step,
        dependsOn: [...dependsOn],
        isList: kind === 'split' || step.forEach !== undefined,
      });
  }
  for (const step of steps.values()) {
    const source = typeof step.spec.forEach === 'string' ? steps.get(step.spec.forEach) : undefined;
    if (source && !source.isList)
      issues.push(
        `steps.${step.name}.forEach: "${source.name}" gives one output, not a list (use a split step or another forEach step)`,
      );
    const merged = step.spec.merge === undefined ? undefined : steps.get(step.spec.merge);
    if (merged && !(merged.isList && merged.kind === 'llm'))
      issues.push(`steps.${step.name}.merge: "${merged.name}" is not an LLM step run for each item of a list`);
  }
  addJudges(steps, issues);
  const order = issues.length === 0 ? topologicalOrder(steps, issues) : [];
  if (issues.length > 0)
    throw new ValidationError(
      'invalid_config',
      issues.map((issue) => `${name}: ${issue}`),
    );
  return { name: spec.name ?? name, inputs, tools: spec.tools ?? {}, steps, order };
}

/**
 * An ensemble combined by a judge step: the judge reads the ensemble's
 * candidates (`{{ steps.<ensemble>.output }}`), and every other step that
 * reads the ensemble waits for the judge and reads its verdict instead.
 */
function addJudges(steps: Map<string, CheckedStep>, issues: string[]): void {
  for (const step of steps.values()) {
    const how = step.spec.combine;
    if (how === undefined || how === 'concat' || how === 'vote') continue;
    const judge = steps.get(how);
    if (!judge) {
      issues.push(`steps.${step.name}.combine: expected concat, vote or a step name, found unknown step "${how}"`);
      continue;
    }
    if (judge.kind !== 'llm' || !judge.dependsOn.includes(step.name)) {
      issues.push(
        `steps.${step.name}.combine: the judge step "${how}" must be an LLM step that reads {{ steps.${step.name}.output }}`,
      );
      continue;
    }
    for (const other of steps.values()) {
      if (other !== judge && other.dependsOn.includes(step.name) && !other.dependsOn.includes(how))
        other.dependsOn.push(how);
    }
  }
}

/** Steps in dependency order; a cycle is reported with its path. */
function topologicalOrder(steps: Map<string, CheckedStep>, issues: string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      issues.push(`steps.${name}: dependency cycle ${cycle.join(' → ')}`);
      return;
    }
    state.set(name, 'visiting');
    for (const dep of steps.get(name)?.dependsOn ?? []) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of steps.keys()) visit(name, []);
  return order;
}

/** Values for every declared input: given ones, else defaults. Throws naming each input still missing. */
export function resolveInputs(pipeline: Pipeline, given: Readonly<Record<string, string>>): Record<string, string> {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const [name, input] of Object.entries(pipeline.inputs)) {
    const value = given[name] ?? input.default;
    if (value === undefined)
      missing.push(`inputs.${name}: required (pass --input ${name}=VALUE or --input ${name}=@FILE)`);
    else values[name] = value;
  }
  for (const name of Object.keys(given))
    if (!(name in pipeline.inputs)) missing.push(`inputs.${name}: the pipeline declares no such input`);
  if (missing.length > 0)
    throw new ValidationError(
      'invalid_request',
      missing.map((m) => `${pipeline.name}: ${m}`),
    );
  return values;
}
