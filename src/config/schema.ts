import { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import { describeIssues } from '../core/validate.js';
import { modelSettingsSchema } from '../core/models.js';
import { accountingSchema, limitSpecSchema } from '../limits/limit-spec-schema.js';

const latencySchema = z.union([
  z.number().min(0),
  z.strictObject({ kind: z.literal('fixed'), ms: z.number().min(0) }),
  z.strictObject({
    kind: z.literal('lognormal'),
    medianMs: z.number().positive(),
    sigma: z.number().min(0),
    minMs: z.number().min(0).optional(),
    maxMs: z.number().positive().optional(),
  }),
  z.strictObject({
    kind: z.literal('perToken'),
    baseMs: z.number().min(0).optional(),
    perInputTokenMs: z.number().min(0).optional(),
    perOutputTokenMs: z.number().min(0).optional(),
  }),
]);

const share = z.number().min(0).max(1);

export const mockModelSchema = z.strictObject({
  latency: latencySchema.optional(),
  timeToFirstTokenMs: z.number().min(0).optional(),
  interTokenMs: z.number().min(0).optional(),
  outputTokens: z
    .union([z.number().int().min(0), z.strictObject({ min: z.number().int().min(0), max: z.number().int().min(0) })])
    .optional(),
  limits: limitSpecSchema.optional(),
  accounting: accountingSchema.optional(),
  faults: z.strictObject({ serverError: share.optional(), overloaded: share.optional(), timeout: share.optional() }).optional(),
});

export const fanoutConfigSchema = z.strictObject({
  /** Calls in flight across the engine. */
  concurrency: z.number().int().positive().optional(),
  defaultMaxTokens: z.number().int().positive().optional(),
  /** How long cached answers are kept, in ms (default 24 hours); per model: models[...].cacheTtlMs. */
  cacheTtlMs: z.number().int().positive().optional(),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().positive().optional(),
      baseDelayMs: z.number().min(0).optional(),
      maxDelayMs: z.number().min(0).optional(),
    })
    .optional(),
  /** Per model (`provider:model`), per provider (`provider:*`), or for every model (`*`). */
  models: z.record(z.string(), modelSettingsSchema).optional(),
  groups: z.record(z.string(), limitSpecSchema).optional(),
  providers: z
    .strictObject({
      mock: z
        .strictObject({
          seed: z.number().int().optional(),
          callLog: z.string().min(1).optional(),
          defaults: mockModelSchema.optional(),
          models: z.record(z.string(), mockModelSchema).optional(),
        })
        .optional(),
    })
    .optional(),
});

export type FanoutConfig = z.infer<typeof fanoutConfigSchema>;

/** Validates a parsed config; the error names every bad field with its path, what was expected and what came. */
export function parseConfig(input: unknown, source = 'config'): FanoutConfig {
  const parsed = fanoutConfigSchema.safeParse(input ?? {});
  if (!parsed.success) throw new ValidationError('invalid_config', describeIssues(parsed.error, source));
  return parsed.data;
}
