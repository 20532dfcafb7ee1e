import { z } from 'zod';
import { describeIssues, FanoutError, ValidationError } from '../contracts/errors.js';
import { assertJsonBounds } from './json-bounds.js';
import { outputCheck } from './output-check.js';
import type { TaskRequest } from '../contracts/types.js';

const contentPart = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text'), text: z.string() }),
  z.strictObject({
    type: z.literal('image'),
    url: z.string().regex(/^(https?:|data:image\/)/, 'expected an http(s) URL or a data:image/… URL'),
    detail: z.enum(['auto', 'low', 'high']).optional(),
  }),
  z
    .strictObject({
      type: z.literal('file'),
      url: z
        .string()
        .regex(
          /^data:[\w.+-]+\/[\w.+-]+;base64,/,
          'expected a base64 data: URL, for example data:application/pdf;base64,…',
        )
        .optional(),
      fileId: z.string().min(1).optional(),
      filename: z.string().min(1).max(255).optional(),
    })
    .refine((part) => (part.url === undefined) !== (part.fileId === undefined), {
      message: 'expected a document as a data: URL (url) or as an uploaded file (fileId), one of the two',
    }),
]);

const toolCallSchema = z.strictObject({ id: z.string().min(1), name: z.string().min(1), arguments: z.string() });

const reasoningBlock = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('thinking'), text: z.string(), signature: z.string().min(1).optional() }),
  z.strictObject({ type: z.literal('redacted'), data: z.string().min(1) }),
]);

const reasoningSettings = z.strictObject({
  effort: z
    .string()
    .regex(/^[a-z_]{1,32}$/, 'expected an effort such as low, medium or high')
    .optional(),
  thinking: z
    .union([
      z.strictObject({ budgetTokens: z.number().int('expected a whole number').positive() }),
      z.enum(['adaptive', 'off']),
    ])
    .optional(),
});

const messageSchema = z
  .strictObject({
    role: z.enum(['system', 'user', 'assistant', 'tool']),
    content: z.union([z.string(), z.array(contentPart)]),
    cache: z.boolean().optional(),
    toolCalls: z.array(toolCallSchema).optional(),
    toolCallId: z.string().min(1).optional(),
    reasoning: z.array(reasoningBlock).optional(),
    name: z.string().min(1).max(64).optional(),
  })
  .refine((m) => (m.role === 'tool') === (m.toolCallId !== undefined), {
    message: 'a tool message names the call it answers (toolCallId), and only a tool message does',
    path: ['toolCallId'],
  })
  .refine((m) => m.role === 'user' || typeof m.content === 'string' || m.content.every((p) => p.type === 'text'), {
    message: 'images and documents are taken in user messages only',
    path: ['content'],
  })
  .refine((m) => m.toolCalls === undefined || m.role === 'assistant', {
    message: 'only an assistant message calls tools',
    path: ['toolCalls'],
  })
  .refine((m) => m.reasoning === undefined || m.role === 'assistant', {
    message: 'only an assistant message carries reasoning',
    path: ['reasoning'],
  });

const jsonObject = z.record(z.string(), z.unknown());

const toolSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 letters, digits, _ or -'),
  description: z.string().optional(),
  parameters: jsonObject.optional(),
  strict: z.boolean().optional(),
});

const responseFormatSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    name: z.string().min(1),
    schema: jsonObject,
    description: z.string().optional(),
    strict: z.boolean().optional(),
  }),
]);

const finitePositive = z.number().finite().positive();
/** Priorities lie within ±1e9 (critical-path priorities are milliseconds: about eleven days). They order a tenant's own work only. */
export const MAX_PRIORITY = 1e9;
const MODEL_NAME = /^[A-Za-z0-9_-]+:.+$/;

export const taskRequestSchema = z.strictObject({
  model: z.string().regex(MODEL_NAME, 'expected "provider:model", for example "mock:reviewer"'),
  messages: z.array(messageSchema).min(1, 'expected at least one message'),
  system: z.string().optional(),
  cacheSystem: z.boolean().optional(),
  maxTokens: z.number().int('expected a whole number').positive('expected a positive number').optional(),
  maxTokensField: z.enum(['max_tokens', 'max_completion_tokens']).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  stop: z.array(z.string()).optional(),
  seed: z.number().int().optional(),
  stream: z.boolean().optional(),
  latency: z.enum(['standard', 'optimized']).optional(),
  providerOptions: z.record(z.string(), z.unknown()).optional(),
  tools: z.array(toolSchema).max(128, 'at most 128 tools').optional(),
  toolChoice: z.union([z.enum(['auto', 'none', 'required']), z.strictObject({ name: z.string().min(1) })]).optional(),
  parallelToolCalls: z.boolean().optional(),
  responseFormat: responseFormatSchema.optional(),
  reasoning: reasoningSettings.optional(),
  passthrough: z.record(z.string(), z.unknown()).optional(),
  checkOutput: z.boolean().optional(),
  priority: z.number().min(-MAX_PRIORITY).max(MAX_PRIORITY).optional(),
  maxAttempts: z.number().int().min(1).optional(),
  attemptTimeoutMs: finitePositive.optional(),
  deadlineMs: finitePositive.optional(),
  label: z.string().optional(),
  tenant: z.string().min(1).optional(),
  cache: z.union([z.boolean(), z.strictObject({ ttlMs: finitePositive.optional() })]).optional(),
});

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isOptionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';
const isOptionalPositiveInt = (v: unknown): boolean => v === undefined || (Number.isInteger(v) && (v as number) >= 1);
const isOptionalPositive = (v: unknown): boolean => v === undefined || (isNumber(v) && v > 0);
const isOptionalRange = (v: unknown, min: number, max: number): boolean =>
  v === undefined || (isNumber(v) && v >= min && v <= max);

const KNOWN_KEYS = new Set(Object.keys(taskRequestSchema.shape));

/**
 * True only for requests `taskRequestSchema` certainly accepts: a cheap check
 * of the common shape, so that the hot path does not pay for zod's parse and
 * copy. Anything unusual (including every invalid request) goes to zod, which
 * has the last word and writes the error messages. A test holds the two to
 * agree: whatever this accepts, the schema accepts.
 */
export function isPlainValidRequest(input: unknown): input is TaskRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return false;
  const r = input as Record<string, unknown>;
  for (const key in r) if (!KNOWN_KEYS.has(key)) return false;
  if (typeof r.model !== 'string' || !MODEL_NAME.test(r.model)) return false;
  const messages = r.messages;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (const m of messages as unknown[]) {
    if (typeof m !== 'object' || m === null) return false;
    const message = m as Record<string, unknown>;
    if (typeof message.content !== 'string') return false;
    if (message.role !== 'user' && message.role !== 'assistant' && message.role !== 'system') return false;
    for (const key in message) if (key !== 'role' && key !== 'content' && key !== 'cache') return false;
    if (message.cache !== undefined && typeof message.cache !== 'boolean') return false;
  }
  return (
    isOptionalString(r.system) &&
    (r.cacheSystem === undefined || typeof r.cacheSystem === 'boolean') &&
    isOptionalPositiveInt(r.maxTokens) &&
    isOptionalRange(r.temperature, 0, 2) &&
    isOptionalRange(r.topP, 0, 1) &&
    (r.stop === undefined || (Array.isArray(r.stop) && r.stop.every((s) => typeof s === 'string'))) &&
    (r.seed === undefined || Number.isInteger(r.seed)) &&
    (r.stream === undefined || typeof r.stream === 'boolean') &&
    (r.latency === undefined || r.latency === 'standard' || r.latency === 'optimized') &&
    r.providerOptions === undefined &&
    r.maxTokensField === undefined &&
    r.tools === undefined &&
    r.toolChoice === undefined &&
    r.parallelToolCalls === undefined &&
    r.responseFormat === undefined &&
    r.reasoning === undefined &&
    r.passthrough === undefined &&
    r.checkOutput === undefined &&
    (r.priority === undefined || (isNumber(r.priority) && Math.abs(r.priority) <= MAX_PRIORITY)) &&
    isOptionalPositiveInt(r.maxAttempts) &&
    isOptionalPositive(r.attemptTimeoutMs) &&
    isOptionalPositive(r.deadlineMs) &&
    isOptionalString(r.label) &&
    (r.tenant === undefined || (typeof r.tenant === 'string' && r.tenant.length > 0)) &&
    (r.cache === undefined || typeof r.cache === 'boolean')
  );
}

/**
 * Fields `providerOptions` may not carry, because each changes what the
 * limiter charged for (the model, the messages counted, the output ceiling
 * reserved, the number of answers) or how the answer is read: in any
 * provider's spelling (OpenAI, Anthropic, Bedrock Converse).
 */
export const RESERVED_PROVIDER_OPTIONS: readonly string[] = [
  'model',
  'modelId',
  'messages',
  'system',
  'max_tokens',
  'max_completion_tokens',
  'max_output_tokens',
  'maxTokens',
  'inferenceConfig',
  'n',
  'stream',
];
const RESERVED = new Set(RESERVED_PROVIDER_OPTIONS);

/** Fields passed to the provider as they are (`providerOptions`, `passthrough`): only those that cannot undo fanout's accounting. */
function checkPassedOn(options: Record<string, unknown>, field: string): void {
  const refused = Object.keys(options).filter((key) => RESERVED.has(key));
  if (refused.length > 0) {
    throw new ValidationError(
      'invalid_request',
      refused.map(
        (key) =>
          `${field}.${key}: may not be set here, since it changes what the limits were charged for; use the request's own fields`,
      ),
    );
  }
  assertJsonBounds(options, field);
}

/**
 * Checks a request from outside; throws a `ValidationError` naming every bad
 * field. The returned request is the caller's object when it was already
 * plainly valid (fanout does not change it; the caller should not either
 * until the task ends), else zod's cleaned copy.
 */
export function validateTaskRequest(input: unknown): TaskRequest {
  if (isPlainValidRequest(input)) return input;
  const parsed = taskRequestSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
  const request = parsed.data as TaskRequest;
  try {
    if (request.providerOptions) checkPassedOn(request.providerOptions, 'providerOptions');
    if (request.passthrough) checkPassedOn(request.passthrough, 'passthrough');
    const names = new Set(request.tools?.map((tool) => tool.name));
    const choice = request.toolChoice;
    if (request.checkOutput !== false) outputCheck.prepare(request.responseFormat);
    if (typeof choice === 'object' && !names.has(choice.name))
      throw new ValidationError('invalid_request', [
        `toolChoice.name: "${choice.name}" is not one of the request's tools`,
      ]);
  } catch (error) {
    throw error instanceof ValidationError
      ? error
      : new ValidationError('invalid_request', [(error as FanoutError).message]);
  }
  return request;
}
