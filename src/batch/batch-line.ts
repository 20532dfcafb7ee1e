import { z } from 'zod';
import { FanoutError, ValidationError } from '../contracts/errors.js';
import type { ChatMessage, TaskRequest } from '../contracts/types.js';
import { assertJsonBounds } from '../core/json-bounds.js';
import { describeIssues } from '../core/validate.js';

/**
 * One input line of `fanout batch`, in either of two shapes:
 *
 * - OpenAI's batch format: `{"custom_id", "method": "POST", "url":
 *   "/v1/chat/completions", "body": {"model", "messages", "max_tokens", ...}}`
 * - the short form: `{"id"?, "model", "prompt" | "messages", "system"?,
 *   "max_tokens"?, ...}`
 */

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const messageSchema = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(contentPart)]),
  name: z.string().optional(),
});

const sampling = {
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  seed: z.number().int().optional(),
  stream: z.boolean().optional(),
};

const openAiBody = z.looseObject({
  model: z.string().min(1, 'expected a model name'),
  messages: z.array(messageSchema).min(1, 'expected at least one message'),
  ...sampling,
});

const openAiLine = z.strictObject({
  custom_id: z.string().min(1),
  method: z.literal('POST').optional(),
  url: z
    .literal('/v1/chat/completions', 'expected "/v1/chat/completions" (the only endpoint fanout batches)')
    .optional(),
  body: openAiBody,
});

const shortLine = z
  .strictObject({
    id: z.union([z.string(), z.number()]).optional(),
    model: z.string().min(1, 'expected a model name'),
    prompt: z.string().optional(),
    messages: z.array(messageSchema).min(1).optional(),
    system: z.string().optional(),
    priority: z.number().finite().optional(),
    ...sampling,
    maxTokens: z.number().int().positive().optional(),
  })
  .refine((line) => (line.prompt === undefined) !== (line.messages === undefined), {
    message: 'expected exactly one of "prompt" or "messages"',
    path: ['prompt'],
  });

export interface BatchLineOptions {
  /** Provider for model names without a `provider:` prefix (OpenAI batch files name bare models). */
  defaultProvider?: string;
  /** Runs every line on this model instead of the one it names. */
  modelOverride?: string;
}

export interface ParsedLine {
  customId: string;
  request: TaskRequest;
}

function toMessages(raw: ReadonlyArray<z.infer<typeof messageSchema>>): { system?: string; messages: ChatMessage[] } {
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

function modelName(model: string, options: BatchLineOptions): string {
  if (options.modelOverride) return options.modelOverride;
  if (model.includes(':')) return model;
  if (options.defaultProvider) return `${options.defaultProvider}:${model}`;
  throw new ValidationError('invalid_request', [
    `model: "${model}" names no provider; write "provider:${model}" or pass --default-provider`,
  ]);
}

interface SamplingInput {
  max_tokens?: number;
  max_completion_tokens?: number;
  maxTokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
}

function samplingFields(line: SamplingInput): Partial<TaskRequest> {
  const fields: Partial<TaskRequest> = {};
  const maxTokens = line.maxTokens ?? line.max_completion_tokens ?? line.max_tokens;
  if (maxTokens !== undefined) fields.maxTokens = maxTokens;
  if (line.temperature !== undefined) fields.temperature = line.temperature;
  if (line.top_p !== undefined) fields.topP = line.top_p;
  if (line.stop !== undefined) fields.stop = typeof line.stop === 'string' ? [line.stop] : line.stop;
  if (line.seed !== undefined) fields.seed = line.seed;
  return fields;
}

/**
 * Parses one line. Throws a `FanoutError` whose message starts with the line
 * number and names the field; never includes the prompt.
 */
export function parseBatchLine(text: string, lineNumber: number, options: BatchLineOptions = {}): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FanoutError('invalid_request', `line ${lineNumber}: not JSON (${(error as Error).message})`);
  }
  try {
    assertJsonBounds(json, '(root)');
    if (typeof json === 'object' && json !== null && 'custom_id' in json) {
      const parsed = openAiLine.safeParse(json);
      if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
      const body = parsed.data.body;
      return {
        customId: parsed.data.custom_id,
        request: {
          model: modelName(body.model, options),
          ...toMessages(body.messages),
          ...samplingFields(body as SamplingInput),
          label: parsed.data.custom_id,
        },
      };
    }
    const parsed = shortLine.safeParse(json);
    if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
    const line = parsed.data;
    const customId = line.id === undefined ? `line-${lineNumber}` : String(line.id);
    const conversation = line.messages
      ? toMessages(line.messages)
      : { messages: [{ role: 'user' as const, content: line.prompt ?? '' }] };
    const system = [line.system, conversation.system].filter((s) => s !== undefined).join('\n\n') || undefined;
    const request: TaskRequest = {
      model: modelName(line.model, options),
      messages: conversation.messages,
      ...samplingFields(line),
      label: customId,
    };
    if (system !== undefined) request.system = system;
    if (line.priority !== undefined) request.priority = line.priority;
    return { customId, request };
  } catch (error) {
    if (error instanceof FanoutError) throw new FanoutError(error.code, `line ${lineNumber}: ${error.message}`);
    throw error;
  }
}

/**
 * An OpenAI chat completions request body as a fanout request (the gateway's
 * `POST /v1/chat/completions`). Throws a `ValidationError` naming the field.
 */
export function requestFromChatBody(
  body: unknown,
  options: BatchLineOptions = {},
): TaskRequest & { includeUsage: boolean } {
  const parsed = openAiBody.safeParse(body);
  if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
  const chat = parsed.data;
  const streamOptions = (chat as { stream_options?: { include_usage?: boolean } }).stream_options;
  return {
    model: modelName(chat.model, options),
    ...toMessages(chat.messages),
    ...samplingFields(chat as SamplingInput),
    ...(chat.stream ? { stream: true } : {}),
    includeUsage: streamOptions?.include_usage === true,
  };
}

/** The custom_id of a line that failed to parse, if one can be read from it. */
export function salvageCustomId(text: string): string | undefined {
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    const id = json.custom_id ?? json.id;
    return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
  } catch {
    return undefined;
  }
}
