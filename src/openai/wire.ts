import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { describeIssues, ValidationError } from '../contracts/errors.js';
import type { ChatMessage, FinishReason, ModelResult, TaskRequest, Usage } from '../contracts/types.js';

/**
 * OpenAI's chat completions wire format, both ways, in one place: a request
 * body read into a fanout request (the gateway, batch lines), a fanout call
 * written as OpenAI messages (the OpenAI-compatible provider), usage and
 * finish reasons each way, and the completion, stream chunk and error bodies
 * fanout answers with.
 */

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });

export const chatMessageSchema = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(contentPart)]),
  name: z.string().optional(),
});

export type ChatBodyMessage = z.infer<typeof chatMessageSchema>;

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

export const chatBodySchema = z.looseObject({
  model: z.string().min(1, 'expected a model name'),
  messages: z.array(chatMessageSchema).min(1, 'expected at least one message'),
  ...samplingShape,
});

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

/** OpenAI messages as fanout's: system and developer messages become the system prompt. */
export function messagesFromChat(raw: readonly ChatBodyMessage[]): { system?: string; messages: ChatMessage[] } {
  const systems: string[] = [];
  const messages: ChatMessage[] = [];
  for (const message of raw) {
    const content =
      typeof message.content === 'string' ? message.content : message.content.map((part) => part.text ?? '').join('');
    if (message.role === 'system' || message.role === 'developer') systems.push(content);
    else messages.push({ role: message.role, content });
  }
  return systems.length > 0 ? { system: systems.join('\n\n'), messages } : { messages };
}

/** A body's sampling fields as fanout's request fields. */
export function samplingFromChat(input: SamplingInput): Partial<TaskRequest> {
  const fields: Partial<TaskRequest> = {};
  const maxTokens = input.maxTokens ?? input.max_completion_tokens ?? input.max_tokens;
  if (maxTokens !== undefined) fields.maxTokens = maxTokens;
  if (input.temperature !== undefined) fields.temperature = input.temperature;
  if (input.top_p !== undefined) fields.topP = input.top_p;
  if (input.stop !== undefined) fields.stop = typeof input.stop === 'string' ? [input.stop] : input.stop;
  if (input.seed !== undefined) fields.seed = input.seed;
  return fields;
}

/**
 * An OpenAI chat completions request body as a fanout request (the gateway's
 * `POST /v1/chat/completions`). Throws a `ValidationError` naming the field.
 */
export function requestFromChatBody(body: unknown, naming: ModelNaming = {}): TaskRequest & { includeUsage: boolean } {
  const parsed = chatBodySchema.safeParse(body);
  if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
  const chat = parsed.data;
  const streamOptions = (chat as { stream_options?: { include_usage?: boolean } }).stream_options;
  return {
    model: modelName(chat.model, naming),
    ...messagesFromChat(chat.messages),
    ...samplingFromChat(chat as SamplingInput),
    ...(chat.stream ? { stream: true } : {}),
    includeUsage: streamOptions?.include_usage === true,
  };
}

/** A fanout call's system prompt and messages as OpenAI messages. */
export function messagesToChat(call: {
  system?: string;
  messages: readonly ChatMessage[];
}): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [];
  if (call.system) messages.push({ role: 'system', content: call.system });
  for (const message of call.messages) messages.push({ role: message.role, content: message.content });
  return messages;
}

/** OpenAI's finish reasons as fanout's. */
export const FINISH_FROM_OPENAI: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content_filter',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
};

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

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: 'assistant'; content: string }; finish_reason: string }>;
  usage: ChatCompletionUsage;
}

/** An answer as OpenAI's `chat.completion` object; `created` in seconds. */
export function chatCompletionBody(id: string, created: number, result: ModelResult): ChatCompletion {
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion',
    created,
    model: result.model,
    choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: result.finishReason }],
    usage: openAiUsage(result.usage),
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
): string {
  const choices = usage ? [] : [{ index: 0, delta, finish_reason: finish }];
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
  error: { code: string; message: string; type: string };
}

/**
 * An error as OpenAI writes one. `type` is OpenAI's: by default
 * `invalid_request_error` for the client's mistakes (a status below 500) and
 * `server_error` otherwise.
 */
export function errorBody(code: string, message: string, typeOrStatus: string | number = 500): ErrorBody {
  const type =
    typeof typeOrStatus === 'string' ? typeOrStatus : typeOrStatus < 500 ? 'invalid_request_error' : 'server_error';
  return { error: { code, message, type } };
}
