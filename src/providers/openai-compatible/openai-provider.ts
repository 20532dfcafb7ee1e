import type OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type {
  AccountingOptions,
  CallContext,
  CallTimeouts,
  ModelCall,
  Provider,
  StreamEvent,
} from '../../contracts/provider.js';
import type { ModelResult } from '../../contracts/types.js';
import {
  FINISH_FROM_OPENAI,
  messagesToChat,
  reasoningToChat,
  toolCallsFromChat,
  toolsToChat,
  usageFromOpenAi,
} from '../../openai/wire.js';
import { openAiRateLimits } from '../rate-limit-headers.js';
import { openAiSdk } from '../sdk.js';
import { StreamResult } from '../stream-result.js';
import { ChatHttp } from './chat-http.js';
import { classifyOpenAiError } from './classify.js';

export interface OpenAiCompatibleOptions {
  /** The prefix of its models: `openai`, `groq`, `vllm`, `ollama`, … */
  name: string;
  /** Passed as `Authorization: Bearer`. Local servers often take any value. */
  apiKey: string;
  /** Default `https://api.openai.com/v1`. */
  baseURL?: string;
  /** What the rate-limit headers mean: Groq's request headers count per day. Default `openai`. */
  dialect?: 'openai' | 'groq';
  /** Milliseconds one HTTP request may take. Default 600,000 (the SDK's). */
  timeoutMs?: number;
  defaultHeaders?: Record<string, string>;
  /** How long a call may go without a sign of its answer; over the engine's `callTimeouts`. */
  timeouts?: CallTimeouts;
}

/**
 * Any OpenAI-compatible chat completions API (OpenAI, Groq, vLLM, Ollama,
 * Together, …). Streams go through the official `openai` SDK with its own
 * retries off (fanout retries, so every wait is visible to the shared
 * limiter); non-streamed calls, the bulk of a batch or a gateway's traffic,
 * are one undici request each (`ChatHttp`), failing with the SDK's error
 * classes. Neither path ever retries on its own.
 */
export class OpenAiCompatibleProvider implements Provider {
  readonly name: string;
  private readonly options: ConstructorParameters<typeof OpenAI>[0];
  /** The SDK client, made on the first stream: a program that never streams never loads the SDK. */
  private sdkClient?: OpenAI;
  private readonly http: ChatHttp;
  private readonly dialect: 'openai' | 'groq';
  readonly timeouts?: CallTimeouts;

  constructor(options: OpenAiCompatibleOptions) {
    this.name = options.name;
    this.dialect = options.dialect ?? 'openai';
    this.timeouts = options.timeouts;
    const baseURL = options.baseURL ?? 'https://api.openai.com/v1';
    const timeoutMs = options.timeoutMs ?? 600_000;
    this.options = {
      apiKey: options.apiKey,
      baseURL,
      maxRetries: 0,
      timeout: timeoutMs,
      defaultHeaders: options.defaultHeaders,
    };
    this.http = new ChatHttp({ baseURL, apiKey: options.apiKey, timeoutMs, defaultHeaders: options.defaultHeaders });
  }

  reportsLimits(): boolean {
    return true;
  }

  accounting(): AccountingOptions {
    return { rule: 'openai' };
  }

  private params(call: ModelCall): ChatCompletionCreateParamsNonStreaming {
    const params: ChatCompletionCreateParamsNonStreaming = { model: call.model, messages: messagesToChat(call) };
    // The ceiling the client named, under the name it used; none invented when it named none.
    if (!call.maxTokensDefaulted) params[call.maxTokensField ?? 'max_tokens'] = call.maxTokens;
    if (call.temperature !== undefined) params.temperature = call.temperature;
    if (call.topP !== undefined) params.top_p = call.topP;
    if (call.stop !== undefined) params.stop = call.stop;
    if (call.seed !== undefined) params.seed = call.seed;
    // Fields fanout does not read go as the client sent them; providerOptions last, as the caller's own word.
    return {
      ...params,
      ...toolsToChat(call),
      ...reasoningToChat(call.reasoning),
      ...(call.passthrough as Partial<ChatCompletionCreateParamsNonStreaming> | undefined),
      ...(call.providerOptions as Partial<ChatCompletionCreateParamsNonStreaming> | undefined),
    };
  }

  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    try {
      const { data, headers } = await this.http.create(this.params(call), context.signal);
      const choice = data.choices[0];
      const toolCalls = toolCallsFromChat(choice?.message.tool_calls);
      const reasoning = reasoningText(choice?.message);
      return {
        text: choice?.message.content ?? '',
        ...(toolCalls ? { toolCalls } : {}),
        ...(reasoning ? { reasoning: [{ type: 'thinking' as const, text: reasoning }] } : {}),
        ...(choice?.logprobs?.content ? { logprobs: choice.logprobs.content } : {}),
        ...(choice?.message.refusal ? { refusal: choice.message.refusal } : {}),
        usage: usageFromOpenAi(data.usage),
        finishReason: FINISH_FROM_OPENAI[choice?.finish_reason ?? 'stop'] ?? 'other',
        model: data.model,
        requestId: headers.get('x-request-id') ?? data.id,
        rateLimit: openAiRateLimits(headers, context.clock.now(), this.dialect),
      };
    } catch (error) {
      throw this.classify(error, context);
    }
  }

  async *stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent> {
    const result = new StreamResult(this.name, call.model);
    try {
      this.sdkClient ??= new (openAiSdk().OpenAI)(this.options);
      const { data: chunks, response } = await this.sdkClient.chat.completions
        .create(
          { ...this.params(call), stream: true, stream_options: { include_usage: true } },
          { signal: context.signal },
        )
        .withResponse();
      result.requestId = response.headers.get('x-request-id') ?? undefined;
      result.rateLimit = openAiRateLimits(response.headers, context.clock.now(), this.dialect);
      context.alive?.();
      for await (const chunk of chunks) {
        context.alive?.();
        result.model = chunk.model || result.model;
        result.requestId ??= chunk.id;
        if (chunk.usage) result.usage = usageFromOpenAi(chunk.usage);
        const choice = chunk.choices[0];
        if (choice?.finish_reason) result.finishReason = FINISH_FROM_OPENAI[choice.finish_reason] ?? 'other';
        for (const piece of choice?.delta?.tool_calls ?? [])
          yield result.toolCallDelta(piece.index, {
            id: piece.id,
            name: piece.function?.name,
            arguments: piece.function?.arguments,
          });
        if (choice?.delta?.refusal) result.refusal = (result.refusal ?? '') + choice.delta.refusal;
        const reasoning = reasoningText(choice?.delta);
        if (reasoning) yield result.reasoningDelta(reasoning);
        const logprobs = choice?.logprobs?.content ?? undefined;
        if (choice?.delta?.content || logprobs?.length) yield result.delta(choice?.delta?.content ?? '', logprobs);
      }
    } catch (error) {
      throw this.classify(error, context);
    }
    yield result.done();
  }

  private classify(error: unknown, context: CallContext): unknown {
    return classifyOpenAiError(error, {
      provider: this.name,
      dialect: this.dialect,
      now: context.clock.now(),
      signal: context.signal,
    });
  }
}

/**
 * The reasoning text of an answer or delta, where an OpenAI-compatible server
 * returns one: `reasoning_content` (DeepSeek, vLLM) or `reasoning` (Groq,
 * OpenRouter, Ollama). OpenAI itself returns none in chat completions.
 */
function reasoningText(message: object | undefined): string | undefined {
  const fields = message as { reasoning_content?: unknown; reasoning?: unknown } | undefined;
  const text = fields?.reasoning_content ?? fields?.reasoning;
  return typeof text === 'string' && text !== '' ? text : undefined;
}

export function createOpenAiCompatibleProvider(options: OpenAiCompatibleOptions): OpenAiCompatibleProvider {
  return new OpenAiCompatibleProvider(options);
}
