import type { Clock } from '../contracts/clock.js';
import type { Usage } from '../contracts/types.js';
import type { Cost, LimitDimension, Limiter, LimitSpec } from '../contracts/limiter.js';
import { MemoryLimiter } from '../limits/limiter.js';

export interface TenantQuotaOptions {
  /** Limits each tenant's gateway requests get, on top of the models' own. */
  limits: Pick<
    LimitSpec,
    | 'requestsPerMinute'
    | 'requestsPerDay'
    | 'tokensPerMinute'
    | 'inputTokensPerMinute'
    | 'outputTokensPerMinute'
    | 'burstSeconds'
  >;
  /** Wait up to this long for the tenant's next permit before answering 429. Default 0: answer 429 at once. */
  maxWaitMs?: number;
  /**
   * Where the tenants' buckets live. Pass the engine's `tenantLimiter` so the
   * gateway charges the same buckets as every other way of submitting (its
   * tasks are then submitted as already charged). Default: a limiter of its own.
   */
  limiter?: Limiter;
}

/** What one request is expected to use, before it runs. */
export interface RequestEstimate {
  inputTokens: number;
  /** The request's max tokens, when it gave one; otherwise 0 and the real count is charged after. */
  outputTokens: number;
}

export type QuotaDecision =
  | {
      allowed: true;
      /** Charges the tenant what the call really used (or, without usage, what was reserved). */
      settle(usage?: Usage): void;
    }
  | {
      allowed: false;
      retryAfterMs: number;
      dimension: 'requests' | 'tokens';
      limit: number;
      remaining: number;
      resetMs: number;
    };

const TOKEN_DIMENSIONS: ReadonlySet<LimitDimension> = new Set([
  'tokensPerMinute',
  'inputTokensPerMinute',
  'outputTokensPerMinute',
]);

/**
 * Each tenant's own quota at the gateway: requests and tokens per minute. A
 * request reserves its estimated tokens (input, plus its max tokens when it
 * gives one) and is charged its real usage when it ends, as the model limits
 * are. A tenant over its quota is told so at once with a 429, `retry-after`
 * and OpenAI-style rate-limit headers (or waits up to `maxWaitMs`), instead of
 * queueing without end behind the shared model limits.
 */
export class TenantQuota {
  private readonly limiter: Limiter;

  constructor(
    private readonly clock: Clock,
    private readonly options: TenantQuotaOptions,
  ) {
    this.limiter = options.limiter ?? new MemoryLimiter();
  }

  /** True when the buckets are shared with the engine (`options.limiter`), so a task admitted here is already charged. */
  get sharesEngineLimits(): boolean {
    return this.options.limiter !== undefined;
  }

  /** Throws `request_too_large` for a request bigger than the tenant's whole token limit. */
  async admit(tenant: string, estimate: RequestEstimate = { inputTokens: 0, outputTokens: 0 }): Promise<QuotaDecision> {
    const cost: Cost = {
      requests: 1,
      tokens: estimate.inputTokens + estimate.outputTokens,
      inputTokens: estimate.inputTokens,
      outputTokens: estimate.outputTokens,
    };
    for (;;) {
      const now = this.clock.now();
      if (!this.limiter.has(tenant)) this.limiter.define(tenant, { ...this.options.limits, transitMs: 0 }, now);
      const permit = this.limiter.reserve(tenant, cost, now);
      if (permit.granted) {
        return {
          allowed: true,
          settle: (usage) => {
            const actual = usage && {
              requests: 1,
              tokens: usage.inputTokens + usage.outputTokens,
              inputTokens: usage.inputTokens,
              outputTokens: usage.outputTokens,
            };
            this.limiter.settle(permit, this.clock.now(), actual);
          },
        };
      }
      if (permit.waitMs <= (this.options.maxWaitMs ?? 0)) {
        await this.clock.sleep(permit.waitMs);
        continue;
      }
      const levels = this.limiter.levels(tenant, now);
      const level = levels.find((l) => l.name === permit.reason) ?? levels[0];
      return {
        allowed: false,
        retryAfterMs: permit.waitMs,
        dimension: TOKEN_DIMENSIONS.has(permit.reason as LimitDimension) ? 'tokens' : 'requests',
        limit: level?.limit ?? 0,
        remaining: level?.remaining ?? 0,
        resetMs: level?.resetMs ?? permit.waitMs,
      };
    }
  }
}
