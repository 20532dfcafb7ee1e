import type { AccountingOptions, CallTimeouts } from '../../contracts/provider.js';
import type {
  BedrockRuntimeClient,
  ConverseCommandInput,
  SystemContentBlock,
  TokenUsage,
} from '@aws-sdk/client-bedrock-runtime';
import { FanoutError, ProviderError, type ErrorCode } from '../../contracts/errors.js';
import { textOf, type FinishReason, type ModelResult, type Usage } from '../../contracts/types.js';
import {
  converseAnswer,
  converseMessages,
  converseReasoningFields,
  converseRefusals,
  converseToolFields,
} from './converse-messages.js';
import { bedrockBurndown } from '../../limits/accounting.js';
import type { CallContext, ModelCall, Provider, StreamEvent } from '../../contracts/provider.js';
import { bedrockSdk, nodeHttpHandlerModule } from '../sdk.js';
import { StreamResult } from '../stream-result.js';

export interface BedrockOptions {
  /** The prefix of its models. Default `bedrock`. */
  name?: string;
  /** Default: the AWS SDK's (AWS_REGION, the profile). */
  region?: string;
  /** Default: the AWS SDK's credential chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Another endpoint (a VPC endpoint, a gateway, a local fake). */
  endpoint?: string;
  /** Speak HTTP/1.1 instead of the SDK's default HTTP/2 (gateways and local fakes often need it). */
  http1?: boolean;
  /** How long a call may go without a sign of its answer; over the engine's `callTimeouts`. */
  timeouts?: CallTimeouts;
}

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  content_filtered: 'content_filter',
  guardrail_intervened: 'content_filter',
};

/** Bedrock's exceptions, as PROVIDERS.md classifies them: code and whether to retry. */
const EXCEPTIONS: Record<string, [ErrorCode, boolean]> = {
  ThrottlingException: ['rate_limited', true],
  ServiceUnavailableException: ['overloaded', true],
  InternalServerException: ['server_error', true],
  ModelTimeoutException: ['timeout', true],
  ModelNotReadyException: ['overloaded', true],
  ModelStreamErrorException: ['server_error', true],
  ModelErrorException: ['server_error', false],
  ValidationException: ['bad_request', false],
  AccessDeniedException: ['auth', false],
  ResourceNotFoundException: ['not_found', false],
  ServiceQuotaExceededException: ['quota_exhausted', false],
};

function usageOf(usage: TokenUsage | undefined): Usage {
  return {
    inputTokens: usage?.inputTokens ?? 0,
    outputTokens: usage?.outputTokens ?? 0,
    cacheReadTokens: usage?.cacheReadInputTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteInputTokens ?? 0,
  };
}

/**
 * AWS Bedrock's Converse and ConverseStream APIs through the AWS SDK, with
 * its retries off (`maxAttempts: 1`, never `adaptive`). A message or system
 * prompt marked `cache` is followed by a `cachePoint` block; a request's
 * `latency: 'optimized'` becomes `performanceConfig` (latency-optimised
 * inference), and provider options pass through as they are. Charged as
 * Bedrock reserves: input + cache + max tokens × burndown, settled to use.
 */
export class BedrockProvider implements Provider {
  readonly name: string;
  private readonly client: BedrockRuntimeClient;
  readonly timeouts?: CallTimeouts;

  constructor(options: BedrockOptions = {}) {
    this.name = options.name ?? 'bedrock';
    this.timeouts = options.timeouts;
    const { BedrockRuntimeClient: Client } = bedrockSdk();
    this.client = new Client({
      region: options.region,
      credentials: options.credentials,
      endpoint: options.endpoint,
      maxAttempts: 1,
      retryMode: 'standard',
      requestHandler: options.http1 ? new (nodeHttpHandlerModule().NodeHttpHandler)() : undefined,
    });
  }

  reportsLimits(): boolean {
    // Bedrock's quotas show only in CloudWatch, never in an answer.
    return false;
  }

  refuses(call: Omit<ModelCall, 'maxTokens'>): string[] {
    return converseRefusals(call, this.name);
  }

  accounting(model: string): AccountingOptions {
    return { rule: 'bedrock', outputBurndown: bedrockBurndown(model) };
  }

  private input(call: ModelCall): ConverseCommandInput {
    const messages = converseMessages(call.messages);
    const systemTexts = [
      call.system,
      ...call.messages.filter((m) => m.role === 'system').map((m) => textOf(m.content)),
    ].filter((s): s is string => s !== undefined);
    const system: SystemContentBlock[] = systemTexts.flatMap(
      (text, i) =>
        (i === 0 && call.cacheSystem
          ? [{ text }, { cachePoint: { type: 'default' } }]
          : [{ text }]) as SystemContentBlock[],
    );
    const input: ConverseCommandInput = {
      modelId: call.model,
      messages,
      ...converseToolFields(call),
      inferenceConfig: {
        maxTokens: call.maxTokens,
        temperature: call.temperature,
        topP: call.topP,
        stopSequences: call.stop,
      },
    };
    if (system.length > 0) input.system = system;
    if (call.latency) input.performanceConfig = { latency: call.latency };
    const options = call.providerOptions as Partial<ConverseCommandInput> | undefined;
    const modelFields = { ...converseReasoningFields(call), ...(options?.additionalModelRequestFields as object) };
    return {
      ...input,
      ...options,
      ...(Object.keys(modelFields).length > 0 ? { additionalModelRequestFields: modelFields as never } : {}),
    };
  }

  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    try {
      const output = await this.client.send(new (bedrockSdk().ConverseCommand)(this.input(call)), {
        abortSignal: context.signal,
      });
      return {
        ...converseAnswer(output.output?.message?.content ?? []),
        usage: usageOf(output.usage),
        finishReason: FINISH[output.stopReason ?? 'end_turn'] ?? 'other',
        model: call.model,
        requestId: output.$metadata.requestId,
      };
    } catch (error) {
      throw this.classify(error, context);
    }
  }

  async *stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent> {
    const result = new StreamResult(this.name, call.model);
    try {
      const output = await this.client.send(new (bedrockSdk().ConverseStreamCommand)(this.input(call)), {
        abortSignal: context.signal,
      });
      result.requestId = output.$metadata.requestId;
      context.alive?.();
      for await (const event of output.stream ?? []) {
        context.alive?.();
        const index = event.contentBlockStart?.contentBlockIndex ?? event.contentBlockDelta?.contentBlockIndex ?? 0;
        const started = event.contentBlockStart?.start?.toolUse;
        if (started) yield result.toolCallDelta(index, { id: started.toolUseId, name: started.name });
        const input = event.contentBlockDelta?.delta?.toolUse?.input;
        if (input) yield result.toolCallDelta(index, { arguments: input });
        const delta = event.contentBlockDelta?.delta?.text;
        if (delta) yield result.delta(delta);
        const thought = event.contentBlockDelta?.delta?.reasoningContent;
        if (thought?.text) yield result.reasoningDelta(thought.text, index);
        if (thought?.signature) result.reasoningSignature(thought.signature, index);
        if (thought?.redactedContent) result.redactedReasoning(Buffer.from(thought.redactedContent).toString('base64'));
        if (event.messageStop) result.finishReason = FINISH[event.messageStop.stopReason ?? 'end_turn'] ?? 'other';
        if (event.metadata?.usage) result.usage = usageOf(event.metadata.usage);
      }
    } catch (error) {
      throw this.classify(error, context);
    }
    yield result.done();
  }

  private classify(error: unknown, context: CallContext): unknown {
    if (context.signal.aborted) return context.signal.reason;
    const e = error as {
      name?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number; requestId?: string };
      $response?: { headers?: Record<string, string> };
    };
    if (e.name === 'AbortError') return new FanoutError('cancelled', `${this.name}: the request was aborted`);
    const known = e.name ? EXCEPTIONS[e.name] : undefined;
    const status = e.$metadata?.httpStatusCode;
    const hint = Number(e.$response?.headers?.['x-amz-retry-after']);
    const common = {
      provider: this.name,
      status,
      requestId: e.$metadata?.requestId,
      body: JSON.stringify({ type: e.name, message: e.message }),
      cause: error,
    };
    if (known) {
      const [code, retryable] = known;
      return new ProviderError(code, `${this.name}: ${e.name} (${e.message ?? 'no message'})`, {
        ...common,
        retryable,
        retryAfterMs: Number.isFinite(hint) && hint > 0 ? hint : undefined,
      });
    }
    if (status !== undefined && status >= 500)
      return new ProviderError('server_error', `${this.name}: ${e.name ?? 'error'} (${status})`, {
        ...common,
        retryable: true,
      });
    if (status === undefined)
      return new ProviderError('network', `${this.name}: ${e.message ?? String(error)}`, {
        ...common,
        retryable: true,
      });
    return new ProviderError('bad_request', `${this.name}: ${e.name ?? 'error'} (${status}): ${e.message ?? ''}`, {
      ...common,
      retryable: false,
    });
  }
}

export function createBedrockProvider(options: BedrockOptions = {}): BedrockProvider {
  return new BedrockProvider(options);
}
