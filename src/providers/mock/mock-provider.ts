import type { AccountingOptions, AccountingRule } from '../../contracts/provider.js';
import { fieldsNotCarried } from '../refusals.js';
import { appendFileSync } from 'node:fs';
import { ProviderError } from '../../contracts/errors.js';
import { seededRandom, type Random } from '../../contracts/random.js';
import type { ModelResult, RateLimitInfo, ToolCall, Usage } from '../../contracts/types.js';
import { admissionCost, failedCost, settledCost } from '../../limits/accounting.js';
import { type LimitSpec, type Reservation } from '../../contracts/limiter.js';
import { MemoryLimiter } from '../../limits/limiter.js';
import type { CallContext, ModelCall, Provider, StreamEvent } from '../../contracts/provider.js';
import { hashPrompt, mockWords } from './text.js';
import { mockJson, mockToolCalls } from './structured.js';

/** A call's latency: fixed milliseconds, or lognormal around a median (seeded). */
export type LatencyProfile =
  | number
  | { kind: 'fixed'; ms: number }
  | { kind: 'lognormal'; medianMs: number; sigma: number; minMs?: number; maxMs?: number }
  /** Time that grows with the call: a base, plus per input token (reading) and per output token (writing). */
  | { kind: 'perToken'; baseMs?: number; perInputTokenMs?: number; perOutputTokenMs?: number };

export interface MockFaults {
  /** Share of calls answering 500 after their latency. */
  serverError?: number;
  /** Share of calls answering 529 overloaded after their latency. */
  overloaded?: number;
  /** Share of calls that hang until aborted (the engine's attempt timeout). */
  timeout?: number;
}

export interface MockModelOptions {
  /** Whole-call latency of `complete` (and a stream's wait for its first token when neither per-token timing is set). Default 0, or time to first token + output × inter-token when those are set. */
  latency?: LatencyProfile;
  /** Streams: milliseconds before the first delta. Default 0. */
  timeToFirstTokenMs?: number;
  /** Streams: milliseconds between deltas. Default 0. */
  interTokenMs?: number;
  /** Output tokens per answer (a number, or a range drawn per prompt); capped by max tokens. Default 24. */
  outputTokens?: number | { min: number; max: number };
  /** The model's own limits: calls beyond them are answered 429 with retry-after. */
  limits?: LimitSpec;
  /** How the model's own limits charge tokens. Default `anthropic` (output refunded to actual). */
  accounting?: AccountingRule;
  faults?: MockFaults;
}

export interface MockProviderOptions {
  /** Per-model behaviour, by model name (the part after `mock:`). */
  models?: Record<string, MockModelOptions>;
  /** Behaviour of models not named in `models`. */
  defaults?: MockModelOptions;
  /** Seed for latencies and faults. Default 1. */
  seed?: number;
  /**
   * A file to which every call the model receives is appended as one JSON line
   * (`{"model", "attempt"}`), written before the call is answered: a record of
   * what the upstream was asked, across process restarts.
   */
  callLog?: string;
  random?: Random;
}

/** What the simulated upstream saw, per model: the figures a real provider's dashboard would show. */
export interface MockModelStats {
  calls: number;
  completed: number;
  /** Calls answered 429 because the model's own limits were exceeded. */
  rateLimited: number;
  serverErrors: number;
  overloaded: number;
  timeouts: number;
  cancelled: number;
  inputTokens: number;
  outputTokens: number;
  inFlight: number;
  maxInFlight: number;
}

function emptyStats(): MockModelStats {
  return {
    calls: 0,
    completed: 0,
    rateLimited: 0,
    serverErrors: 0,
    overloaded: 0,
    timeouts: 0,
    cancelled: 0,
    inputTokens: 0,
    outputTokens: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
}

const DEFAULT_OUTPUT_TOKENS = 24;

/**
 * `mock:<name>`: a local simulated model. Deterministic text derived from the
 * prompt, token usage, latency profiles, streaming, its own rate limits
 * (429 with retry-after and rate-limit information) and fault injection. It
 * needs no key and no network, and implements the same `Provider` contract
 * as the real providers.
 */
export class MockProvider implements Provider {
  readonly name = 'mock';
  private readonly options: MockProviderOptions;
  private readonly random: Random;
  private readonly limiter = new MemoryLimiter();
  private readonly perModel = new Map<string, MockModelStats>();
  private only?: Set<string>;

  constructor(options: MockProviderOptions = {}) {
    this.options = options;
    this.random = options.random ?? seededRandom(options.seed ?? 1);
  }

  /**
   * The mock's tokenizer: one token per four characters of each message,
   * rounded up, plus four per message and three per request, like chat
   * formats add. Cheap and exact, so fanout's estimate and the mock's usage agree.
   */
  countInputTokens(call: Pick<ModelCall, 'messages' | 'system'>): number {
    let total = 3;
    if (call.system) total += 4 + Math.ceil(call.system.length / 4);
    for (const message of call.messages) total += 4 + Math.ceil(message.content.length / 4);
    return total;
  }

  /**
   * Serves only these models (and those with settings under `models`); any
   * other `mock:<name>` is refused at submit. Default: every name is served.
   */
  serveOnly(models: readonly string[]): void {
    this.only = new Set([...models, ...Object.keys(this.options.models ?? {})]);
  }

  serves(model: string): boolean {
    return this.only === undefined || this.only.has(model);
  }

  servedModels(): readonly string[] | undefined {
    return this.only && [...this.only].sort();
  }

  /** A mock model with limits of its own sends rate-limit information, as a real provider's headers would. */
  reportsLimits(model: string): boolean {
    return this.settingsFor(model).limits !== undefined;
  }

  /** The mock calls tools and writes JSON that fits a schema (see `structured.ts`); it takes no images, reasoning or passed-through fields. */
  refuses(call: Omit<ModelCall, 'maxTokens'>): string[] {
    return fieldsNotCarried(call, this.name, { tools: true, responseFormat: true });
  }

  accounting(): AccountingOptions {
    return { rule: 'anthropic' };
  }

  /** Counters for one model, or summed over all models. */
  stats(model?: string): MockModelStats {
    if (model !== undefined) return { ...(this.perModel.get(model) ?? emptyStats()) };
    const total = emptyStats();
    for (const s of this.perModel.values()) {
      for (const k of Object.keys(total) as Array<keyof MockModelStats>) total[k] += s[k];
    }
    return total;
  }

  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    const run = this.begin(call, context);
    try {
      const latency = run.latencyMs;
      if (run.fault === 'timeout') await hang(context.signal);
      if (latency > 0) await context.clock.sleep(latency, context.signal);
      return run.finish();
    } catch (error) {
      throw run.fail(error);
    }
  }

  async *stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent> {
    const run = this.begin(call, context);
    try {
      if (run.fault === 'timeout') await hang(context.signal);
      const { timeToFirstTokenMs, interTokenMs } = run.settings;
      // Without per-token timings, a stream takes the call's whole latency before its first token.
      const ttft = timeToFirstTokenMs ?? (interTokenMs === undefined ? run.latencyMs : 0);
      const inter = interTokenMs ?? 0;
      if (ttft > 0) await context.clock.sleep(ttft, context.signal);
      const pieces = run.pieces();
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0 && inter > 0) await context.clock.sleep(inter, context.signal);
        if (run.fault !== undefined && i === pieces.length >> 1) run.throwFault();
        yield pieces[i] as StreamEvent;
      }
      yield { type: 'done', result: run.finish() };
    } catch (error) {
      throw run.fail(error);
    }
  }

  private settingsFor(model: string): MockModelOptions {
    return this.options.models?.[model] ?? this.options.defaults ?? {};
  }

  private statsFor(model: string): MockModelStats {
    let stats = this.perModel.get(model);
    if (!stats) {
      stats = emptyStats();
      this.perModel.set(model, stats);
    }
    return stats;
  }

  /** Admits the call against the model's own limits (or throws a 429) and fixes its outcome. */
  private begin(call: ModelCall, context: CallContext): MockRun {
    const settings = this.settingsFor(call.model);
    const stats = this.statsFor(call.model);
    const now = context.clock.now();
    stats.calls += 1;
    if (this.options.callLog)
      appendFileSync(this.options.callLog, `${JSON.stringify({ model: call.model, attempt: context.attempt })}\n`);
    const inputTokens = this.countInputTokens(call);
    const accounting: AccountingOptions = { rule: settings.accounting ?? 'anthropic' };
    const reserved = admissionCost(accounting, {
      inputTokens,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      maxOutputTokens: call.maxTokens,
    });
    let reservation: Reservation | undefined;
    if (settings.limits) {
      // The upstream counts a call when it arrives: no transit guard on this side.
      if (!this.limiter.has(call.model)) this.limiter.define(call.model, { ...settings.limits, transitMs: 0 }, now);
      try {
        this.limiter.checkFits(call.model, reserved);
      } catch (error) {
        stats.rateLimited += 1;
        throw new ProviderError('request_too_large', (error as Error).message, { provider: 'mock', status: 429 });
      }
      const permit = this.limiter.reserve(call.model, reserved, now);
      if (!permit.granted) {
        stats.rateLimited += 1;
        const retryAfterMs = Number.isFinite(permit.waitMs) ? permit.waitMs : 1000;
        throw new ProviderError(
          'rate_limited',
          `mock:${call.model} rate limit reached (${permit.reason}); retry after ${retryAfterMs} ms`,
          {
            provider: 'mock',
            status: 429,
            retryAfterMs,
            retryable: true,
            rateLimit: { ...this.rateLimitInfo(call.model, now), retryAfterMs },
          },
        );
      }
      reservation = permit;
    }
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    return new MockRun({
      provider: this,
      call,
      settings,
      stats,
      clock: context.clock,
      inputTokens,
      random: this.random,
      release: (usage) => {
        if (!reservation) return;
        this.limiter.settle(
          reservation,
          context.clock.now(),
          usage ? settledCost(accounting, reserved, usage) : failedCost(reserved),
        );
      },
    });
  }

  /** The rate-limit headers this model would send now. */
  rateLimitInfo(model: string, now: number): RateLimitInfo | undefined {
    const levels = this.limiter.levels(model, now);
    if (levels.length === 0) return undefined;
    const info: RateLimitInfo = {};
    for (const level of levels) {
      if (level.name === 'requestsPerMinute') {
        info.requestsLimit = level.limit;
        info.requestsRemaining = level.remaining;
        info.requestsResetMs = level.resetMs;
      } else if (level.name === 'tokensPerMinute') {
        info.tokensLimit = level.limit;
        info.tokensRemaining = level.remaining;
        info.tokensResetMs = level.resetMs;
      }
    }
    return info;
  }
}

interface MockRunOptions {
  provider: MockProvider;
  call: ModelCall;
  settings: MockModelOptions;
  stats: MockModelStats;
  clock: CallContext['clock'];
  inputTokens: number;
  random: Random;
  release: (usage?: Usage) => void;
}

/** One admitted call: its drawn latency, fault and words, and its bookkeeping. */
class MockRun {
  readonly settings: MockModelOptions;
  readonly words: string[];
  /** The tool the answer calls, if it calls one; else its JSON text, if it was asked for JSON. */
  readonly toolCalls?: ToolCall[];
  readonly json?: string;
  readonly latencyMs: number;
  readonly fault?: keyof MockFaults;
  private readonly options: MockRunOptions;
  private readonly truncated: boolean;
  private ended = false;

  constructor(options: MockRunOptions) {
    this.options = options;
    this.settings = options.settings;
    const { call, random } = options;
    const hash = hashPrompt(call.model, call.system, call.messages);
    const wanted = outputTokensFor(this.settings.outputTokens, hash);
    this.truncated = wanted > call.maxTokens;
    this.words = mockWords(hash, Math.min(wanted, call.maxTokens));
    this.toolCalls = mockToolCalls(call, hash);
    this.json = this.toolCalls ? undefined : mockJson(call, this.words, hash);
    this.latencyMs = latencyFor(this.settings, options.inputTokens, this.words.length, random);
    this.fault = drawFault(this.settings.faults, random);
  }

  throwFault(): never {
    const provider = 'mock';
    const model = this.options.call.model;
    if (this.fault === 'overloaded') {
      throw new ProviderError('overloaded', `mock:${model} is overloaded (529)`, {
        provider,
        status: 529,
        retryable: true,
      });
    }
    throw new ProviderError('server_error', `mock:${model} internal error (500)`, {
      provider,
      status: 500,
      retryable: true,
    });
  }

  /** The answer as a stream tells it: the text word by word, JSON in pieces, or a tool call's name and then its arguments. */
  pieces(): StreamEvent[] {
    const call = this.toolCalls?.[0];
    if (call)
      return [
        { type: 'tool-delta', call: { index: 0, id: call.id, name: call.name } },
        { type: 'tool-delta', call: { index: 0, arguments: call.arguments } },
      ];
    if (this.json !== undefined)
      return (this.json.match(/[\s\S]{1,16}/g) ?? []).map((text) => ({ type: 'delta' as const, text }));
    return this.words.map((word, i) => ({ type: 'delta' as const, text: i === 0 ? word : ` ${word}` }));
  }

  /** Output tokens: a word each for text; a token per four characters of JSON or tool arguments. */
  private outputTokens(): number {
    const written = this.toolCalls?.[0]?.arguments ?? this.json;
    return written === undefined ? this.words.length : Math.ceil(written.length / 4);
  }

  finish(): ModelResult {
    if (this.fault === 'serverError' || this.fault === 'overloaded') this.throwFault();
    const usage: Usage = {
      inputTokens: this.options.inputTokens,
      outputTokens: this.outputTokens(),
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    };
    this.end('completed', usage);
    const { stats, call, clock, provider } = this.options;
    stats.inputTokens += usage.inputTokens;
    stats.outputTokens += usage.outputTokens;
    return {
      text: this.toolCalls ? '' : (this.json ?? this.words.join(' ')),
      ...(this.toolCalls ? { toolCalls: this.toolCalls } : {}),
      usage,
      finishReason: this.toolCalls ? 'tool_calls' : this.truncated && this.json === undefined ? 'length' : 'stop',
      // The mock names its models as fanout does: what answered is what was asked for.
      model: `mock:${call.model}`,
      requestId: `mock-${stats.calls}`,
      rateLimit: provider.rateLimitInfo(call.model, clock.now()),
    };
  }

  fail(error: unknown): unknown {
    if (this.ended) return error;
    const { stats } = this.options;
    if (error instanceof ProviderError) {
      if (error.code === 'overloaded') stats.overloaded += 1;
      else stats.serverErrors += 1;
      this.end('failed');
    } else {
      if (this.fault === 'timeout') stats.timeouts += 1;
      else stats.cancelled += 1;
      this.end('failed');
    }
    return error;
  }

  private end(outcome: 'completed' | 'failed', usage?: Usage): void {
    if (this.ended) return;
    this.ended = true;
    this.options.stats.inFlight -= 1;
    if (outcome === 'completed') this.options.stats.completed += 1;
    this.options.release(usage);
  }
}

function outputTokensFor(setting: MockModelOptions['outputTokens'], hash: number): number {
  if (setting === undefined) return DEFAULT_OUTPUT_TOKENS;
  if (typeof setting === 'number') return setting;
  return setting.min + (hash % (setting.max - setting.min + 1));
}

function latencyFor(settings: MockModelOptions, inputTokens: number, outputTokens: number, random: Random): number {
  const profile = settings.latency;
  if (profile === undefined) {
    return (settings.timeToFirstTokenMs ?? 0) + Math.max(0, outputTokens - 1) * (settings.interTokenMs ?? 0);
  }
  if (typeof profile === 'number') return profile;
  if (profile.kind === 'fixed') return profile.ms;
  if (profile.kind === 'perToken') {
    return Math.round(
      (profile.baseMs ?? 0) +
        inputTokens * (profile.perInputTokenMs ?? 0) +
        outputTokens * (profile.perOutputTokenMs ?? 0),
    );
  }
  // Box–Muller: a standard normal draw from two uniforms.
  const u = 1 - random.next();
  const v = random.next();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  const ms = profile.medianMs * Math.exp(profile.sigma * z);
  return Math.round(Math.min(profile.maxMs ?? Number.POSITIVE_INFINITY, Math.max(profile.minMs ?? 0, ms)));
}

function drawFault(faults: MockFaults | undefined, random: Random): keyof MockFaults | undefined {
  if (!faults) return undefined;
  const draw = random.next();
  let edge = 0;
  for (const kind of ['serverError', 'overloaded', 'timeout'] as const) {
    edge += faults[kind] ?? 0;
    if (draw < edge) return kind;
  }
  return undefined;
}

/** Never resolves; rejects with the signal's reason when it aborts. */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export function createMockProvider(options: MockProviderOptions = {}): MockProvider {
  return new MockProvider(options);
}
