import type { Clock } from '../core/clock.js';
import type { ChatMessage, ModelResult } from '../core/types.js';
import type { CallTimeouts } from '../core/watchdog.js';
import type { AccountingOptions } from '../limits/accounting.js';

/** One call as a provider receives it: the model name without its `provider:` prefix. */
export interface ModelCall {
  model: string;
  messages: ChatMessage[];
  system?: string;
  cacheSystem?: boolean;
  /** Always set by the engine (the request's value or the engine default), so limits match what is sent. */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
  latency?: 'standard' | 'optimized';
  providerOptions?: Record<string, unknown>;
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

export type StreamEvent = { type: 'delta'; text: string } | { type: 'done'; result: ModelResult };

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
  /** The models `serves` accepts, when it accepts only a known list (for error messages and model lists). */
  servedModels?(): readonly string[] | undefined;
  /** This provider's call timeouts, over the engine's `callTimeouts`. */
  readonly timeouts?: CallTimeouts;
  /** How this provider charges its rate limits for `model`. */
  accounting(model: string): AccountingOptions;
  close?(): Promise<void>;
}
