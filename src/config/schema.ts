import { z } from 'zod';
import { describeIssues, ValidationError } from '../contracts/errors.js';
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
  faults: z
    .strictObject({ serverError: share.optional(), overloaded: share.optional(), timeout: share.optional() })
    .optional(),
});

/** How long a call may go without a sign of its answer (see `CallTimeouts`). */
const callTimeoutsSchema = z.strictObject({
  firstByteMs: z.number().int().positive().optional(),
  idleMs: z.number().int().positive().optional(),
  perOutputTokenMs: z.number().min(0).optional(),
});

export const openAiCompatibleSchema = z.strictObject({
  /** The API the server speaks. Default: `anthropic` and `bedrock` for those names, else `openai-compatible`. */
  kind: z.enum(['openai-compatible', 'anthropic', 'bedrock']).optional(),
  /** Bedrock: the AWS region (default: the AWS SDK's, from AWS_REGION or the profile). */
  region: z.string().min(1).optional(),
  /** Bedrock: another endpoint (a VPC endpoint or a gateway). */
  endpoint: z.url().optional(),
  /** Bedrock: HTTP/1.1 instead of HTTP/2. */
  http1: z.boolean().optional(),
  /** The key, usually written "${OPENAI_API_KEY}" so that it stays out of the file. */
  apiKey: z.string().min(1).optional(),
  baseURL: z.url({ message: 'expected a URL such as http://localhost:8000/v1' }).optional(),
  /** What the rate-limit headers mean (Groq's request headers count per day). */
  dialect: z.enum(['openai', 'groq']).optional(),
  /** The most one HTTP request may take, as the vendor SDK counts it: a last resort behind `timeouts`. */
  timeoutMs: z.number().int().positive().optional(),
  timeouts: callTimeoutsSchema.optional(),
});

export const fanoutConfigSchema = z.strictObject({
  /** Calls in flight across the engine. */
  concurrency: z.number().int().positive().optional(),
  /** Every provider's call timeouts, unless its own `providers.<name>.timeouts` says otherwise. */
  timeouts: callTimeoutsSchema.optional(),
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
  /**
   * Providers by the name their models use (`openai:gpt-4o` → `openai`). `mock`
   * is the local model; `anthropic` (or `kind: anthropic`) speaks Anthropic's
   * Messages API; any other name is an OpenAI-compatible server (`openai`,
   * `groq` and local vLLM or Ollama servers alike).
   */
  providers: z
    .object({
      mock: z
        .strictObject({
          seed: z.number().int().optional(),
          callLog: z.string().min(1).optional(),
          defaults: mockModelSchema.optional(),
          models: z.record(z.string(), mockModelSchema).optional(),
        })
        .optional(),
    })
    .catchall(openAiCompatibleSchema)
    .optional(),
});

export type OpenAiCompatibleSettings = z.infer<typeof openAiCompatibleSchema>;
type ParsedConfig = z.infer<typeof fanoutConfigSchema>;
export type MockProviderConfig = NonNullable<NonNullable<ParsedConfig['providers']>['mock']>;

/** A checked config. `providers.mock` configures the local model; any other name is an OpenAI-compatible server. */
export type FanoutConfig = Omit<ParsedConfig, 'providers'> & {
  providers?: { mock?: MockProviderConfig; [name: string]: OpenAiCompatibleSettings | MockProviderConfig | undefined };
};

/** Validates a parsed config; the error names every bad field with its path, what was expected and what came. */
export function parseConfig(input: unknown, source = 'config'): FanoutConfig {
  const parsed = fanoutConfigSchema.safeParse(input ?? {});
  if (!parsed.success) throw new ValidationError('invalid_config', describeIssues(parsed.error, source));
  return parsed.data as FanoutConfig;
}
