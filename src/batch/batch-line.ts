import { z } from 'zod';
import { describeIssues, FanoutError, ValidationError } from '../contracts/errors.js';
import type { TaskRequest } from '../contracts/types.js';
import {
  chatBodySchema,
  chatMessageSchema,
  messagesFromChat,
  modelName,
  requestFieldsFromChat,
  samplingFromChat,
  samplingShape,
  type ModelNaming,
} from '../openai/wire.js';
import { assertJsonBounds } from '../core/json-bounds.js';

/**
 * One input line of `fanout batch`, in either of two shapes:
 *
 * - OpenAI's batch format: `{"custom_id", "method": "POST", "url":
 *   "/v1/chat/completions", "body": {"model", "messages", "max_tokens", ...}}`
 * - the short form: `{"id"?, "model", "prompt" | "messages", "system"?,
 *   "max_tokens"?, ...}`
 */

const openAiLine = z.strictObject({
  custom_id: z.string().min(1),
  method: z.literal('POST').optional(),
  url: z
    .literal('/v1/chat/completions', 'expected "/v1/chat/completions" (the only endpoint fanout batches)')
    .optional(),
  body: chatBodySchema,
});

const shortLine = z
  .strictObject({
    id: z.union([z.string(), z.number()]).optional(),
    model: z.string().min(1, 'expected a model name'),
    prompt: z.string().optional(),
    messages: z.array(chatMessageSchema).min(1).optional(),
    system: z.string().optional(),
    priority: z.number().finite().optional(),
    ...samplingShape,
    maxTokens: z.number().int().positive().optional(),
  })
  .refine((line) => (line.prompt === undefined) !== (line.messages === undefined), {
    message: 'expected exactly one of "prompt" or "messages"',
    path: ['prompt'],
  });

/** How a batch names its models: see `ModelNaming`. */
export type BatchLineOptions = ModelNaming;

export interface ParsedLine {
  customId: string;
  request: TaskRequest;
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
      if (body.n != null && body.n > 1)
        throw new ValidationError('invalid_request', [
          'body.n: more than one choice per batch line is not supported; write n lines',
        ]);
      return {
        customId: parsed.data.custom_id,
        request: { ...requestFieldsFromChat(body, options), label: parsed.data.custom_id },
      };
    }
    const parsed = shortLine.safeParse(json);
    if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
    const line = parsed.data;
    const customId = line.id === undefined ? `line-${lineNumber}` : String(line.id);
    const conversation = line.messages
      ? messagesFromChat(line.messages)
      : { messages: [{ role: 'user' as const, content: line.prompt ?? '' }] };
    const system = [line.system, conversation.system].filter((s) => s !== undefined).join('\n\n') || undefined;
    const request: TaskRequest = {
      model: modelName(line.model, options),
      messages: conversation.messages,
      ...samplingFromChat(line),
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
