import { z } from 'zod';

const count = z.number().finite().positive();

/** The schema of `LimitSpec`, for configs and for limits handed to the library. */
export const limitSpecSchema = z.strictObject({
  requestsPerMinute: count.optional(),
  requestsPerDay: count.optional(),
  tokensPerMinute: count.optional(),
  inputTokensPerMinute: count.optional(),
  outputTokensPerMinute: count.optional(),
  maxConcurrent: z.number().int().positive().optional(),
  burstSeconds: z.number().positive().max(60).optional(),
  transitMs: z.number().min(0).optional(),
});

export const accountingSchema = z.enum(['openai', 'anthropic', 'bedrock']);
