import type OpenAI from 'openai';
import { z } from 'zod';
import { describeIssues, ValidationError } from '../contracts/errors.js';
import {
  addUsage,
  type FinishReason,
  type ModelResult,
  type TaskRequest,
  type TokenLogprob,
  type Usage,
} from '../contracts/types.js';
import {
  chatMessageSchema,
  messagesFromChat,
  reasoningFromChat,
  reasoningShape,
  thinkingBlocksToChat,
  toolCallsToChat,
  toolsFromChat,
  toolShape,
} from './chat-fields.js';
export {
  chatMessageSchema,
  reasoningToChat,
  messagesFromChat,
  messagesToChat,
  toolsToChat,
  toolCallsToChat,
  toolCallsFromChat,
  toolsFromChat,
  toolShape,
} from './chat-fields.js';
export type { ChatBodyMessage } from './chat-fields.js';

/**
 * OpenAI's chat completions wire format, both ways, in one place: a request
 * body read into a fanout request (the gateway, batch lines), a fanout call
 * written as OpenAI messages (the OpenAI-compatible provider), usage and
 * finish reasons each way, and the completion, stream chunk and error bodies
 * fanout answers with.
 */

/** The sampling fields fanout reads from a body (and from the short batch form, which names them the same). */
export const samplingShape = {
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  seed: z.number().int().optional(),
  stream: z.boolean().optional(),
};

/** Choices one gateway request may ask for (`n`): each is a call of its own. */
export const MAX_CHOICES = 16;

export const chatBodySchema = z.looseObject({
  model: z.string().min(1, 'expected a model name'),
  messages: z.array(chatMessageSchema).min(1, 'expected at least one message'),
  ...samplingShape,
  ...toolShape,
  ...reasoningShape,
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.number().int().min(1).max(MAX_CHOICES, `at most ${MAX_CHOICES} choices per request`).nullable().optional(),
});

/** The body fields fanout reads itself; every other field is the request's `passthrough`. */
const READ_FIELDS = new Set(Object.keys(chatBodySchema.shape));

/**
 * Body fields fanout cannot yet carry faithfully: each is refused by name
 * rather than sent and its effect lost (a second choice, an audio answer, log
 * probabilities fanout would not hand back).
 */
const REFUSED_FIELDS: Readonly<Record<string, (value: unknown) => string | undefined>> = {
  functions: () => 'functions: deprecated by OpenAI; use tools',
  function_call: () => 'function_call: deprecated by OpenAI; use tool_choice',
  audio: () => 'audio: audio answers are not supported',
  modalities: (m) =>
    Array.isArray(m) && m.some((x) => x !== 'text') ? 'modalities: only text answers are supported' : undefined,
};

/** The fields of a body fanout does not read, to pass to an OpenAI-compatible provider as they are; refuses those it cannot carry. */
export function passthroughOf(body: Record<string, unknown>): Record<string, unknown> | undefined {
  let passthrough: Record<string, unknown> | undefined;
  const refused: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (READ_FIELDS.has(key) || value === undefined) continue;
    const refusal = REFUSED_FIELDS[key]?.(value);
    if (refusal) refused.push(refusal);
    else if (!(key in REFUSED_FIELDS)) (passthrough ??= {})[key] = value;
  }
  if (refused.length > 0) throw new ValidationError('invalid_request', refused);
  return passthrough;
}

export interface SamplingInput {
  max_tokens?: number;
  max_completion_tokens?: number;
  maxTokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
}

/** How bare model names are read: OpenAI files and clients name models without fanout's `provider:`. */
export interface ModelNaming {
  /** Provider for model names without a `provider:` prefix. */
  defaultProvider?: string;
  /** Every request on this model instead of the one it names. */
  modelOverride?: string;
}

/** A body's model as fanout names it (`provider:model`). */
export function modelName(model: string, naming: ModelNaming): string {
  if (naming.modelOverride) return naming.modelOverride;
  if (model.includes(':')) return model;
  if (naming.defaultProvider) return `${naming.defaultProvider}:${model}`;
  throw new ValidationError('invalid_request', [
    `model: "${model}" names no provider; write "provider:${model}" or pass --default-provider`,
  ]);
}

/** A body's sampling fields as fanout's request fields. */
export function samplingFromChat(input: SamplingInput): Partial<TaskRequest> {
  const fields: Partial<TaskRequest> = {};
  const maxTokens = input.maxTokens ?? input.max_completion_tokens ?? input.max_tokens;
  if (maxTokens !== undefined) fields.maxTokens = maxTokens;
  if (input.maxTokens === undefined && input.max_completion_tokens !== undefined)
    fields.maxTokensField = 'max_completion_tokens';
  if (input.temperature !== undefined) fields.temperature = input.temperature;
  if (input.top_p !== undefined) fields.topP = input.top_p;
  if (input.stop !== undefined) fields.stop = typeof input.stop === 'string' ? [input.stop] : input.stop;
  if (input.seed !== undefined) fields.seed = input.seed;
  return fields;
}

/** A parsed chat completions body as fanout's request fields (the gateway's requests, batch lines in OpenAI's form). */
export function requestFieldsFromChat(chat: z.infer<typeof chatBodySchema>, naming: ModelNaming): TaskRequest {
  const passthrough = passthroughOf(chat);
  return {
    model: modelName(chat.model, naming),
    ...messagesFromChat(chat.messages),
    ...samplingFromChat(chat as SamplingInput),
    ...toolsFromChat(chat),
    ...reasoningFromChat(chat),
    ...(passthrough ? { passthrough } : {}),
  };
}

/**
 * An OpenAI chat completions request body as a fanout request (the gateway's
 * `POST /v1/chat/completions`). Throws a `ValidationError` naming the field.
 */
export function requestFromChatBody(
  body: unknown,
  naming: ModelNaming = {},
): TaskRequest & { includeUsage: boolean; choices: number } {
  const parsed = chatBodySchema.safeParse(body);
  if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
  const chat = parsed.data;
  return {
    ...requestFieldsFromChat(chat, naming),
    ...(chat.stream ? { stream: true } : {}),
    includeUsage: chat.stream_options?.include_usage === true,
    choices: chat.n ?? 1,
  };
}

/** OpenAI's finish reasons as fanout's. */
export const FINISH_FROM_OPENAI: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content_filter',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
};

/**
 * fanout's finish reason as OpenAI's, whose list has no `other`: an answer
 * that ended for another reason (Anthropic's `pause_turn`, say) ended
 * without being cut, which OpenAI calls `stop`.
 */
export function finishReasonToChat(reason: FinishReason): 'stop' | 'length' | 'tool_calls' | 'content_filter' {
  return reason === 'other' ? 'stop' : reason;
}

/** OpenAI's usage as fanout's: cached prompt tokens apart from the rest of the input. */
export function usageFromOpenAi(usage: OpenAI.CompletionUsage | undefined | null): Usage {
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    inputTokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cached),
    outputTokens: usage?.completion_tokens ?? 0,
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
  };
}

export interface ChatCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** fanout's usage as OpenAI's: prompt tokens include cached ones. */
export function openAiUsage(usage: Usage): ChatCompletionUsage {
  const promptTokens = usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: promptTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cacheReadTokens },
  };
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string | null;
  refusal: string | null;
  tool_calls?: ReturnType<typeof toolCallsToChat>;
  /** The model's reasoning text, where the provider returned it (as DeepSeek, vLLM and LiteLLM name it). */
  reasoning_content?: string;
  /** The reasoning blocks with their signatures, to hand back on the next turn (as LiteLLM names them). */
  thinking_blocks?: ReturnType<typeof thinkingBlocksToChat>;
}

/** A choice's log probabilities as OpenAI writes them. */
export interface ChoiceLogprobs {
  content: TokenLogprob[];
  refusal: null;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: ChatCompletionMessage;
    finish_reason: string;
    logprobs: ChoiceLogprobs | null;
  }>;
  usage: ChatCompletionUsage;
}

/** An answer as an OpenAI message: its text (null when it only called tools), tool calls and refusal. */
export function chatMessageOf(result: ModelResult): ChatCompletionMessage {
  const calls = result.toolCalls;
  const message: ChatCompletionMessage = {
    role: 'assistant',
    content: calls?.length && result.text === '' ? null : result.text,
    refusal: result.refusal ?? null,
  };
  if (calls?.length) message.tool_calls = toolCallsToChat(calls);
  if (result.reasoning?.length) Object.assign(message, reasoningOfAnswer(result.reasoning));
  return message;
}

/** An answer's reasoning as fanout's answers give it: its text, and its blocks with their signatures. */
export function reasoningOfAnswer(blocks: NonNullable<ModelResult['reasoning']>): {
  reasoning_content: string;
  thinking_blocks: ReturnType<typeof thinkingBlocksToChat>;
} {
  return {
    reasoning_content: blocks.map((b) => (b.type === 'thinking' ? b.text : '')).join(''),
    thinking_blocks: thinkingBlocksToChat(blocks),
  };
}

/** An answer as OpenAI's `chat.completion` object; `created` in seconds. More answers (`n`) are more choices, their usage summed. */
export function chatCompletionBody(
  id: string,
  created: number,
  result: ModelResult,
  more: readonly ModelResult[] = [],
): ChatCompletion {
  let usage = result.usage;
  for (const other of more) usage = addUsage(usage, other.usage);
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion',
    created,
    model: result.model,
    choices: [result, ...more].map((r, index) => ({
      index,
      message: chatMessageOf(r),
      finish_reason: finishReasonToChat(r.finishReason),
      logprobs: r.logprobs ? { content: r.logprobs, refusal: null } : null,
    })),
    usage: openAiUsage(usage),
  };
}

/**
 * One server-sent event of OpenAI's streamed completion: a delta and finish
 * reason, or (with `usage`) the last chunk that carries only the usage.
 */
export function completionChunk(
  stream: { id: string; created: number; model: string },
  delta: Record<string, unknown>,
  finish: string | null,
  usage?: ChatCompletionUsage,
  logprobs?: TokenLogprob[],
): string {
  const choices = usage
    ? []
    : [{ index: 0, delta, logprobs: logprobs ? { content: logprobs, refusal: null } : null, finish_reason: finish }];
  const chunk = {
    id: `chatcmpl-${stream.id}`,
    object: 'chat.completion.chunk',
    created: stream.created,
    model: stream.model,
    choices,
    ...(usage ? { usage } : {}),
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/** An error body in OpenAI's shape. */
export interface ErrorBody {
  /** `param`: the request field the error is about, or null (OpenAI's `ErrorResponse` requires it). */
  error: { code: string; message: string; type: string; param: string | null };
}

/** The field a validation issue names ("messages.0.content: expected …" → "messages.0.content"), or null. */
export function paramOf(issue: string | undefined): string | null {
  const field = issue === undefined ? undefined : /^([A-Za-z_][\w.]*):/.exec(issue)?.[1];
  return field === undefined || field === 'line' ? null : field;
}

/**
 * An error as OpenAI writes one. `type` is OpenAI's: by default
 * `invalid_request_error` for the client's mistakes (a status below 500) and
 * `server_error` otherwise.
 */
export function errorBody(
  code: string,
  message: string,
  typeOrStatus: string | number = 500,
  param: string | null = null,
): ErrorBody {
  const type =
    typeof typeOrStatus === 'string' ? typeOrStatus : typeOrStatus < 500 ? 'invalid_request_error' : 'server_error';
  return { error: { code, message, type, param } };
}
