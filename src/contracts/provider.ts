import type { Clock } from './clock.js';
import type {
  ChatMessage,
  ModelResult,
  ReasoningSettings,
  ResponseFormat,
  TokenLogprob,
  ToolCallDelta,
  ToolChoice,
  ToolDefinition,
} from './types.js';

/** One call as a provider receives it: the model name without its `provider:` prefix. */
export interface ModelCall {
  model: string;
  messages: ChatMessage[];
  system?: string;
  cacheSystem?: boolean;
  /** The output ceiling the limits reserved: the request's, else the engine default. Sent where an API needs one. */
  maxTokens: number;
  /** True when the request named no ceiling and `maxTokens` is only what was reserved: an OpenAI-compatible provider then sends none. */
  maxTokensDefaulted?: boolean;
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  temperature?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
  latency?: 'standard' | 'optimized';
  providerOptions?: Record<string, unknown>;
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  reasoning?: ReasoningSettings;
  passthrough?: Record<string, unknown>;
}

export interface CallContext {
  /** Aborts when the task is cancelled or the attempt times out; the provider must stop its request. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
  /** The engine's clock; a provider that waits uses it. */
  clock: Clock;
  /**
   * The provider has heard from the answer: its response headers, or any
   * event of a stream, pings and reasoning included. A provider calls it on
   * each, so that the engine's first-byte and idle-stream limits see a call
   * that is slow but alive. Optional for callers outside the engine.
   */
  alive?(): void;
}

export type StreamEvent =
  | { type: 'delta'; text: string; logprobs?: TokenLogprob[] }
  /** A piece of a tool call, as it comes. */
  | { type: 'tool-delta'; call: ToolCallDelta }
  /** A piece of the model's reasoning text, as it comes. */
  | { type: 'reasoning-delta'; text: string }
  | { type: 'done'; result: ModelResult };

/**
 * A model provider. Implementations translate fanout's call into their
 * vendor's wire format and back, and throw `ProviderError` with the failure
 * classified (code, retryable, retry-after). They never retry on their own:
 * the engine owns retries, so that waits are visible to the shared limiter.
 */
export interface Provider {
  /** The prefix in `provider:model` names. */
  readonly name: string;
  complete(call: ModelCall, context: CallContext): Promise<ModelResult>;
  /**
   * Streams deltas and ends with exactly one `done` event. An error after the
   * first delta is thrown from the iterator; the engine discards the partial text.
   */
  stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent>;
  /**
   * Input tokens of a call by this provider's own count. Optional: without it
   * the engine estimates with the o200k tokenizer.
   */
  countInputTokens?(call: Pick<ModelCall, 'model' | 'messages' | 'system'>): number;
  /**
   * True when the provider's answers carry its rate limits (headers). For a
   * model fanout was given no limits for, the engine then starts cautiously:
   * one call, whose answer says the limits, before the rest.
   */
  reportsLimits?(model: string): boolean;
  /**
   * False for a model this provider will not serve: the engine refuses a
   * request for it at submit, naming the models it does serve. Optional:
   * without it, every model name goes to the provider.
   */
  serves?(model: string): boolean;
  /**
   * The fields of `call` this provider cannot carry to `call.model` in its own
   * form, each as a message naming the field and the provider ("tools is not
   * supported by anthropic"): the engine refuses such a request at submit
   * rather than send it reshaped. Optional: without it, every field is taken.
   */
  refuses?(call: Omit<ModelCall, 'maxTokens'>): string[];
  /** The models `serves` accepts, when it accepts only a known list (for error messages and model lists). */
  servedModels?(): readonly string[] | undefined;
  /** This provider's call timeouts, over the engine's `callTimeouts`. */
  readonly timeouts?: CallTimeouts;
  /** How this provider charges its rate limits for `model`. */
  accounting(model: string): AccountingOptions;
  close?(): Promise<void>;
}

/**
 * How a provider charges its rate limits, so fanout charges its own buckets
 * the same way (see PROVIDERS.md):
 *
 * - `openai`: tokens are charged at admission as prompt + max_tokens and are
 *   not refunded when the reply is shorter (OpenAI, Groq and most
 *   OpenAI-compatible servers). Usage above the charge is debited.
 * - `anthropic`: input tokens per minute count uncached input + cache writes
 *   (cache reads are free, except on Haiku 3, Haiku 3.5 and Opus 3); output
 *   tokens per minute are charged max_tokens at admission and refunded down to
 *   the real output at the end.
 * - `bedrock`: input + cache reads + cache writes + max_tokens × burndown are
 *   reserved at the start and settled to input + cache writes + output ×
 *   burndown (burndown 5 on Claude 3.7 and later, 1 otherwise).
 */
export type AccountingRule = 'openai' | 'anthropic' | 'bedrock';

export interface AccountingOptions {
  rule: AccountingRule;
  /** Quota tokens one output token uses (Bedrock). Default 1. */
  outputBurndown?: number;
  /** Whether cache reads count against input limits (Anthropic's older models). Default false. */
  cacheReadsCount?: boolean;
}

/**
 * How long a call may go without a sign of its answer before fanout gives up
 * on the attempt (and retries it, as any timeout). These catch a provider that
 * accepts the connection and then says nothing, which a single long total
 * limit would let hold a worker for many minutes.
 */
export interface CallTimeouts {
  /**
   * From sending a call to the provider's first sign of an answer: a stream's
   * response headers, or any event of it. Default 60,000.
   */
  firstByteMs?: number;
  /** The longest a stream that has begun may go without an event (a token, a ping). Default 60,000. */
  idleMs?: number;
  /**
   * A non-streamed answer arrives all at once, so its first byte is the whole
   * answer: it is given `firstByteMs` plus this many ms per token of its max
   * tokens (50: as slow as 20 tokens a second). Default 50.
   */
  perOutputTokenMs?: number;
}
