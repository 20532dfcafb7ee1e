import { z } from 'zod';
import { ValidationError } from './errors.js';
import type { TaskRequest } from './types.js';

/** Turns zod's issues into messages that name the field, what was expected and what came. */
export function describeIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    const field = prefix ? `${prefix}.${path}` : path;
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length > 0 ? field : prefix || '(root)';
      return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${field}: ${issue.message}`;
  });
}

const messageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});

const finitePositive = z.number().finite().positive();

export const taskRequestSchema = z.strictObject({
  model: z.string().regex(/^[A-Za-z0-9_-]+:.+$/, 'expected "provider:model", for example "mock:reviewer"'),
  messages: z.array(messageSchema).min(1, 'expected at least one message'),
  system: z.string().optional(),
  maxTokens: z.number().int('expected a whole number').positive('expected a positive number').optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  stop: z.array(z.string()).optional(),
  seed: z.number().int().optional(),
  stream: z.boolean().optional(),
  providerOptions: z.record(z.string(), z.unknown()).optional(),
  priority: z.number().finite().optional(),
  maxAttempts: z.number().int().min(1).optional(),
  attemptTimeoutMs: finitePositive.optional(),
  deadlineMs: finitePositive.optional(),
  label: z.string().optional(),
});

/** Checks a request from outside; throws a `ValidationError` naming every bad field. */
export function validateTaskRequest(input: unknown): TaskRequest {
  const parsed = taskRequestSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError('invalid_request', describeIssues(parsed.error));
  return parsed.data as TaskRequest;
}
