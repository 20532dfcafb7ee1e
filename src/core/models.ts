import { z } from 'zod';
import { describeIssues, ValidationError } from '../contracts/errors.js';
import type { Cost, Limiter, LimitSpec } from '../contracts/limiter.js';
import type { AccountingOptions, AccountingRule, Provider } from '../contracts/provider.js';
import type { TaskRequest, Usage } from '../contracts/types.js';
import { admissionCost } from '../limits/accounting.js';
import { estimateInputTokens, InputCalibration } from '../limits/estimate.js';
import { accountingSchema, limitSpecSchema } from '../limits/limit-spec-schema.js';

/** How fanout treats one model (`provider:model`), every model of a provider (`provider:*`), or every model (`*`). */
export interface ModelSettings {
  /** Limits of this model's own limit key. Ignored when `group` is set. */
  limits?: LimitSpec;
  /** Share the limits of a named group with other models (a provider quota shared across versions). */
  group?: string;
  /** How the provider charges its limits; default: the provider's own rule for the model. */
  accounting?: AccountingRule;
  /** Quota tokens per output token (Bedrock burndown). */
  outputBurndown?: number;
  /** Whether cache reads count against input limits. */
  cacheReadsCount?: boolean;
  /** How long this model's answers stay in the result cache, in ms. Default: the engine's. */
  cacheTtlMs?: number;
  /**
   * The output ceiling of a request of this model that names none: reserved
   * at admission, and sent where the API needs one (Anthropic, Bedrock).
   * Default: the engine's `defaultMaxTokens`.
   */
  maxOutputTokens?: number;
  /** Prices in US dollars per million tokens, for cost reports. */
  price?: Price;
}

/** Prices in US dollars per million tokens. Cache reads and writes cost as input unless given. */
export interface Price {
  inputPerMillion: number;
  outputPerMillion: number;
  cacheReadPerMillion?: number;
  cacheWritePerMillion?: number;
}

/** What `usage` cost at `price`, in US dollars. */
export function costOf(price: Price, usage: Usage): number {
  return (
    (usage.inputTokens * price.inputPerMillion +
      usage.outputTokens * price.outputPerMillion +
      usage.cacheReadTokens * (price.cacheReadPerMillion ?? price.inputPerMillion) +
      usage.cacheWriteTokens * (price.cacheWritePerMillion ?? price.inputPerMillion)) /
    1_000_000
  );
}

export const modelSettingsSchema = z.strictObject({
  limits: limitSpecSchema.optional(),
  group: z.string().min(1).optional(),
  accounting: accountingSchema.optional(),
  outputBurndown: z.number().finite().positive().optional(),
  cacheReadsCount: z.boolean().optional(),
  cacheTtlMs: z.number().finite().positive().optional(),
  maxOutputTokens: z.number().int('expected a whole number').positive().optional(),
  price: z
    .strictObject({
      inputPerMillion: z.number().min(0),
      outputPerMillion: z.number().min(0),
      cacheReadPerMillion: z.number().min(0).optional(),
      cacheWritePerMillion: z.number().min(0).optional(),
    })
    .optional(),
});

export interface ResolvedModel {
  /** `provider:model` as submitted. */
  model: string;
  provider: Provider;
  /** The part after `provider:`. */
  modelName: string;
  /** The limit key the model's calls are charged to. */
  key: string;
  accounting: AccountingOptions;
  /** How long answers stay in the result cache, in ms, when the model's settings say. */
  cacheTtlMs?: number;
  /** The output ceiling of a request that names none, when the model's settings say. */
  maxOutputTokens?: number;
  price?: Price;
  /** True when the key limits tokens, so input must be counted before admission. */
  countsTokens: boolean;
  /**
   * When the key limits no tokens, a call's charge depends only on its max
   * tokens: those charges, made once and shared (frozen) by every task.
   */
  fixedCosts: Map<number, Readonly<Cost>>;
  /** How the provider counts this model's input relative to fanout's estimate, learned from its answers. */
  calibration: InputCalibration;
}

export interface ModelRegistryOptions {
  providers: ReadonlyMap<string, Provider>;
  models: Readonly<Record<string, ModelSettings>>;
  groups: Readonly<Record<string, LimitSpec>>;
  limiter: Limiter;
  now: () => number;
  /**
   * Told once of each model used with no limits of its own (nor a provider's
   * or `*` entry), with the configured model whose name is closest, when one
   * is a likely misspelling.
   */
  onUnconfigured?: (model: string, notice: { suggestion?: string; learnsLimits: boolean }) => void;
}

/** How a provider's key is usually given: named in the error for a provider that is not configured. */
const KEY_VARIABLES: Readonly<Record<string, string>> = {
  openai: 'OPENAI_API_KEY',
  groq: 'GROQ_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
};

/** Edit distance between two short strings (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The name in `names` a typo of `name` most likely meant: within 2 edits (1 for short names), else none. */
export function closestName(name: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = name.length <= 6 ? 2 : 3;
  for (const candidate of names) {
    const distance = editDistance(name, candidate);
    if (distance > 0 && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Maps `provider:model` names to providers, limit keys and accounting; remembers each answer. */
export class ModelRegistry {
  private readonly resolved = new Map<string, ResolvedModel>();

  constructor(private readonly options: ModelRegistryOptions) {
    checkSettings(options.models, options.groups);
    for (const name of Object.keys(options.models)) {
      if (name === '*') continue;
      const provider = name.slice(0, name.indexOf(':'));
      if (!name.includes(':') || !options.providers.has(provider)) {
        throw new ValidationError('invalid_config', [
          `models.${name}: expected "provider:model", "provider:*" or "*" with a known provider; known providers: ${[...options.providers.keys()].join(', ')}`,
        ]);
      }
    }
    for (const [name, settings] of Object.entries(options.models)) {
      if (settings.group !== undefined && !(settings.group in options.groups)) {
        throw new ValidationError('invalid_config', [
          `models.${name}.group: unknown group "${settings.group}"; defined groups: ${Object.keys(options.groups).join(', ') || '(none)'}`,
        ]);
      }
    }
    for (const [group, spec] of Object.entries(options.groups)) options.limiter.define(group, spec, options.now());
  }

  /**
   * A model with no limits: told when its name is close to a configured one
   * (a likely typo), or when its provider is a real one (its limits will be
   * learned from its answers; a local mock's are simply none).
   */
  private tellUnconfigured(model: string, provider: Provider, modelName: string): void {
    if (!this.options.onUnconfigured) return;
    const configured = Object.keys(this.options.models).filter((name) => !name.endsWith('*'));
    const suggestion = closestName(model, configured);
    if (suggestion === undefined && provider.name === 'mock') return;
    this.options.onUnconfigured(model, {
      ...(suggestion ? { suggestion } : {}),
      learnsLimits: provider.reportsLimits?.(modelName) === true,
    });
  }

  /**
   * The models charged to `key` count input tokens from now on (the key has
   * learned a token limit). False when they already did.
   */
  countTokensOn(key: string): boolean {
    let changed = false;
    for (const entry of this.resolved.values()) {
      if (entry.key !== key || entry.countsTokens) continue;
      entry.countsTokens = true;
      entry.fixedCosts.clear();
      changed = true;
    }
    return changed;
  }

  /** Throws `unknown_provider` when the prefix names no registered provider. */
  resolve(model: string): ResolvedModel {
    const known = this.resolved.get(model);
    if (known) return known;
    const colon = model.indexOf(':');
    const providerName = model.slice(0, colon);
    const modelName = model.slice(colon + 1);
    const provider = this.options.providers.get(providerName);
    if (!provider) {
      const variable = KEY_VARIABLES[providerName];
      const how = variable
        ? `set ${variable} in the environment, or configure providers.${providerName} with apiKey: "\${${variable}}"`
        : `configure it under providers.${providerName} (a local OpenAI-compatible server: its baseURL)`;
      const typo = closestName(providerName, this.options.providers.keys());
      throw new ValidationError('unknown_provider', [
        `model: unknown provider "${providerName}" in "${model.slice(0, 200)}"${typo ? ` (did you mean ${typo}?)` : ''}; known providers: ${[...this.options.providers.keys()].join(', ')}. To use ${providerName}, ${how}`,
      ]);
    }
    if (provider.serves && !provider.serves(modelName)) {
      const served = provider.servedModels?.() ?? [];
      const list = served.length > 0 ? `; it serves ${served.map((name) => `${providerName}:${name}`).join(', ')}` : '';
      throw new ValidationError('unknown_provider', [
        `model: ${providerName} does not serve "${model.slice(0, 200)}"${list}`,
      ]);
    }
    const exact = this.options.models[model];
    const settings = exact ?? this.options.models[`${providerName}:*`] ?? this.options.models['*'] ?? {};
    if (settings.limits === undefined && settings.group === undefined)
      this.tellUnconfigured(model, provider, modelName);
    const key = settings.group ?? model;
    const { limiter } = this.options;
    if (settings.group === undefined && !limiter.has(key))
      limiter.define(key, settings.limits ?? {}, this.options.now());
    const base = provider.accounting(modelName);
    const accounting: AccountingOptions = {
      rule: settings.accounting ?? base.rule,
      outputBurndown: settings.outputBurndown ?? base.outputBurndown,
      cacheReadsCount: settings.cacheReadsCount ?? base.cacheReadsCount,
    };
    const countsTokens = limiter.buckets(key).some((b) => !b.name.startsWith('requests'));
    // Limits unknown, but the provider will say them: ask once before sending the rest.
    if (settings.limits === undefined && settings.group === undefined && provider.reportsLimits?.(modelName))
      limiter.probe(key, this.options.now());
    const entry: ResolvedModel = {
      model,
      provider,
      modelName,
      key,
      accounting,
      countsTokens,
      fixedCosts: new Map(),
      calibration: new InputCalibration(),
      cacheTtlMs: settings.cacheTtlMs,
      maxOutputTokens: settings.maxOutputTokens,
      price: settings.price,
    };
    this.resolved.set(model, entry);
    return entry;
  }
}

/** Validates settings handed to the library directly (the CLI's config file is validated as a whole). */
function checkSettings(
  models: Readonly<Record<string, ModelSettings>>,
  groups: Readonly<Record<string, LimitSpec>>,
): void {
  const issues: string[] = [];
  for (const [name, settings] of Object.entries(models)) {
    const parsed = modelSettingsSchema.safeParse(settings);
    if (!parsed.success) issues.push(...describeIssues(parsed.error, `models.${name}`));
  }
  for (const [name, spec] of Object.entries(groups)) {
    const parsed = limitSpecSchema.safeParse(spec);
    if (!parsed.success) issues.push(...describeIssues(parsed.error, `groups.${name}`));
  }
  if (issues.length > 0) throw new ValidationError('invalid_config', issues);
}

/**
 * What a request to `resolved` is charged at admission: its input tokens
 * (counted by the provider when it can, else estimated) and its max output
 * tokens, as the model's accounting says. A key that limits no tokens needs
 * no count: its charges depend on the max tokens alone and are made once.
 */
/** A request's output ceiling: its own, else its model's (`maxOutputTokens`), else the engine's default. */
export function outputCeiling(resolved: ResolvedModel, request: TaskRequest, engineDefault: number): number {
  return request.maxTokens ?? resolved.maxOutputTokens ?? engineDefault;
}

export function admissionCostOf(resolved: ResolvedModel, request: TaskRequest, defaultMaxTokens: number): Cost {
  const maxOutputTokens = outputCeiling(resolved, request, defaultMaxTokens);
  if (!resolved.countsTokens) {
    let cost = resolved.fixedCosts.get(maxOutputTokens);
    if (!cost) {
      cost = Object.freeze(
        admissionCost(resolved.accounting, {
          inputTokens: 0,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          maxOutputTokens,
        }),
      );
      resolved.fixedCosts.set(maxOutputTokens, cost);
    }
    return cost;
  }
  const provider = resolved.provider;
  const inputTokens = provider.countInputTokens
    ? provider.countInputTokens({ model: resolved.modelName, messages: request.messages, system: request.system })
    : resolved.calibration.apply(estimateInputTokens(request));
  return admissionCost(resolved.accounting, { inputTokens, cacheReadTokens: 0, cacheWriteTokens: 0, maxOutputTokens });
}
