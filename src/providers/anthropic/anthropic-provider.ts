import type { AccountingOptions, CallTimeouts } from '../../contracts/provider.js';
import type Anthropic from '@anthropic-ai/sdk';
import { FanoutError, ProviderError, type ErrorCode } from '../../contracts/errors.js';
import { textOf, type FinishReason, type ModelResult, type Usage } from '../../contracts/types.js';
import {
  anthropicAnswer,
  anthropicMessages,
  anthropicPassthroughFields,
  anthropicReasoningFields,
  anthropicRefusals,
  anthropicToolFields,
} from './anthropic-messages.js';
import type { CallContext, ModelCall, Provider, StreamEvent } from '../../contracts/provider.js';
import { anthropicRateLimits } from '../rate-limit-headers.js';
import { anthropicSdk } from '../sdk.js';
import { StreamResult } from '../stream-result.js';

export interface AnthropicOptions {
  /** The prefix of its models. Default `anthropic`. */
  name?: string;
  apiKey: string;
  /** Without `/v1`: the SDK adds `/v1/messages`. Default https://api.anthropic.com. */
  baseURL?: string;
  /** Milliseconds one HTTP request may take. Default 600,000. Passed on every call, so large `max_tokens` never trips the SDK's non-streaming guard. */
  timeoutMs?: number;
  /** How long a call may go without a sign of its answer; over the engine's `callTimeouts`. */
  timeouts?: CallTimeouts;
}

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
  pause_turn: 'other',
};

type TextBlock = { type: 'text'; text: string; cache_control?: { type: 'ephemeral' } };

function block(text: string, cache: boolean | undefined): TextBlock {
  return cache ? { type: 'text', text, cache_control: { type: 'ephemeral' } } : { type: 'text', text };
}

function usageOf(
  usage:
    | {
        input_tokens?: number | null;
        output_tokens?: number | null;
        cache_read_input_tokens?: number | null;
        cache_creation_input_tokens?: number | null;
      }
    | undefined,
): Usage {
  return {
    inputTokens: usage?.input_tokens ?? 0,
    outputTokens: usage?.output_tokens ?? 0,
    cacheReadTokens: usage?.cache_read_input_tokens ?? 0,
    cacheWriteTokens: usage?.cache_creation_input_tokens ?? 0,
  };
}

/**
 * Anthropic's Messages API through `@anthropic-ai/sdk`, with the SDK's
 * retries off. System prompt and messages become text blocks; a message or
 * system prompt marked `cache` gets a `cache_control` breakpoint. Charged as
 * Anthropic counts (input: uncached + cache writes; output refunded to actual).
 */
export class AnthropicProvider implements Provider {
  readonly name: string;
  private readonly client: Anthropic;
  private readonly timeoutMs: number;
  readonly timeouts?: CallTimeouts;

  constructor(options: AnthropicOptions) {
    this.name = options.name ?? 'anthropic';
    this.timeoutMs = options.timeoutMs ?? 600_000;
    this.timeouts = options.timeouts;
    const { Anthropic: Client } = anthropicSdk();
    this.client = new Client({
      apiKey: options.apiKey,
      baseURL: options.baseURL ?? 'https://api.anthropic.com',
      maxRetries: 0,
      timeout: this.timeoutMs,
    });
  }

  reportsLimits(): boolean {
    return true;
  }

  refuses(call: Omit<ModelCall, 'maxTokens'>): string[] {
    return anthropicRefusals(call, this.name);
  }

  accounting(model: string): AccountingOptions {
    // Cache reads count against input limits only on these older models.
    return { rule: 'anthropic', cacheReadsCount: /claude-3-haiku|claude-3-5-haiku|claude-3-opus/.test(model) };
  }

  private params(call: ModelCall): Anthropic.MessageCreateParamsNonStreaming {
    const toolFields = anthropicToolFields(call);
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model: call.model,
      max_tokens: call.maxTokens,
      messages: anthropicMessages(call.messages),
      ...toolFields,
      ...anthropicReasoningFields(call, toolFields.output_config),
      ...anthropicPassthroughFields(call.passthrough),
    };
    const systems = [
      call.system,
      ...call.messages.filter((m) => m.role === 'system').map((m) => textOf(m.content)),
    ].filter((s): s is string => s !== undefined);
    if (systems.length > 0)
      params.system = systems.map((text, i) => block(text, i === 0 ? call.cacheSystem : undefined));
    // The Messages API takes no temperature, top_p or seed: a call with one is refused (`anthropicRefusals`).
    if (call.stop !== undefined) params.stop_sequences = call.stop;
    return { ...params, ...(call.providerOptions as Partial<Anthropic.MessageCreateParamsNonStreaming> | undefined) };
  }

  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    try {
      const { data, response } = await this.client.messages
        .create(this.params(call), { signal: context.signal, timeout: this.timeoutMs })
        .withResponse();
      return {
        ...anthropicAnswer(data.content),
        usage: usageOf(data.usage),
        finishReason: FINISH[data.stop_reason ?? 'end_turn'] ?? 'other',
        model: data.model,
        requestId: response.headers.get('request-id') ?? data.id,
        rateLimit: anthropicRateLimits(response.headers, context.clock.now()),
      };
    } catch (error) {
      throw this.classify(error, context);
    }
  }

  async *stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent> {
    const result = new StreamResult(this.name, call.model);
    let stopped = false;
    try {
      const { data: events, response } = await this.client.messages
        .create({ ...this.params(call), stream: true }, { signal: context.signal, timeout: this.timeoutMs })
        .withResponse();
      result.requestId = response.headers.get('request-id') ?? undefined;
      result.rateLimit = anthropicRateLimits(response.headers, context.clock.now());
      context.alive?.();
      for await (const event of events) {
        context.alive?.();
        if (event.type === 'message_start') {
          result.model = event.message.model;
          result.usage = usageOf(event.message.usage);
        } else if (event.type === 'content_block_start' && event.content_block.type === 'tool_use') {
          const { id, name } = event.content_block;
          yield result.toolCallDelta(event.index, { id, name });
        } else if (event.type === 'content_block_start' && event.content_block.type === 'redacted_thinking') {
          result.redactedReasoning(event.content_block.data);
        } else if (event.type === 'content_block_delta' && event.delta.type === 'thinking_delta') {
          yield result.reasoningDelta(event.delta.thinking, event.index);
        } else if (event.type === 'content_block_delta' && event.delta.type === 'signature_delta') {
          result.reasoningSignature(event.delta.signature, event.index);
        } else if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') {
          if (event.delta.partial_json)
            yield result.toolCallDelta(event.index, { arguments: event.delta.partial_json });
        } else if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          yield result.delta(event.delta.text);
        } else if (event.type === 'message_delta') {
          result.finishReason = FINISH[event.delta.stop_reason ?? 'end_turn'] ?? 'other';
          if (result.usage) result.usage = { ...result.usage, outputTokens: event.usage.output_tokens };
        } else if (event.type === 'message_stop') {
          stopped = true;
        }
      }
    } catch (error) {
      throw this.classify(error, context);
    }
    yield result.done(stopped);
  }

  /** Classifies the SDK's errors as PROVIDERS.md describes for Anthropic. */
  private classify(error: unknown, context: CallContext): unknown {
    if (context.signal.aborted) return context.signal.reason;
    const { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } = anthropicSdk();
    const fail = (
      code: ErrorCode,
      message: string,
      retryable: boolean,
      extra: Partial<ConstructorParameters<typeof ProviderError>[2]> = {},
    ) => new ProviderError(code, `${this.name}: ${message}`, { provider: this.name, retryable, ...extra });
    if (error instanceof APIUserAbortError)
      return new FanoutError('cancelled', `${this.name}: the request was aborted`);
    if (error instanceof APIConnectionTimeoutError)
      return fail('timeout', 'the request timed out', true, { cause: error });
    if (error instanceof APIConnectionError)
      return fail('network', `connection failed (${error.message})`, true, { cause: error });
    if (!(error instanceof APIError))
      return fail(
        'network',
        `the response broke off (${error instanceof Error ? error.message : String(error)})`,
        true,
        { cause: error },
      );
    const body = (error.error ?? {}) as { error?: { type?: string; message?: string } };
    const type = error.type ?? body.error?.type ?? '';
    const message = body.error?.message ?? error.message;
    const rateLimit = error.headers ? anthropicRateLimits(error.headers, context.clock.now()) : undefined;
    const common = {
      status: error.status,
      requestId: error.requestID ?? undefined,
      body: JSON.stringify({ type, message, error_code: error.errorCode }),
      rateLimit,
      cause: error,
    };
    const status = error.status;
    if (status === 429 || type === 'rate_limit_error') {
      // A spend-limit 429 has no retry-after and fails until access returns: never retry it.
      if (
        error.errorCode === 'enforced_spend_limit_reached' ||
        (status === 429 && rateLimit?.retryAfterMs === undefined)
      ) {
        return fail('quota_exhausted', `spend or usage limit reached (${message})`, false, common);
      }
      return fail('rate_limited', 'rate limited (429)', true, { ...common, retryAfterMs: rateLimit?.retryAfterMs });
    }
    if (status === 529 || type === 'overloaded_error')
      return fail('overloaded', 'overloaded (529)', true, { ...common, retryAfterMs: rateLimit?.retryAfterMs });
    if (status === 504 || type === 'timeout_error')
      return fail('timeout', 'the request ran too long (504)', true, common);
    if (status === 413 || type === 'request_too_large')
      return fail('request_too_large', 'request too large (413)', false, common);
    if (status === 401 || status === 403) return fail('auth', `not authorised (${status}): ${message}`, false, common);
    if (status === 402 || type === 'billing_error')
      return fail('quota_exhausted', `billing (402): ${message}`, false, common);
    if (status === 404) return fail('not_found', `not found (404): ${message}`, false, common);
    if (status === 400) return fail('bad_request', `bad request (400): ${message}`, false, common);
    if (status === 409) return fail('server_error', 'conflict (409)', true, common);
    if (status === undefined || status >= 500)
      return fail('server_error', `server error (${status ?? `${type} inside the stream`})`, true, common);
    return fail('bad_request', `unexpected status ${status}: ${message}`, false, common);
  }
}

export function createAnthropicProvider(options: AnthropicOptions): AnthropicProvider {
  return new AnthropicProvider(options);
}
