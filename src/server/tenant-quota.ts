import type { Clock } from '../core/clock.js';
import { Limiter, type LimitSpec } from '../limits/limiter.js';

export interface TenantQuotaOptions {
  /** Limits each tenant's gateway requests get, on top of the models' own. */
  limits: Pick<LimitSpec, 'requestsPerMinute' | 'requestsPerDay' | 'burstSeconds'>;
  /** Wait up to this long for the tenant's next permit before answering 429. Default 0: answer 429 at once. */
  maxWaitMs?: number;
}

export type QuotaDecision = { allowed: true } | { allowed: false; retryAfterMs: number; limit: number; remaining: number; resetMs: number };

/**
 * Each tenant's own request quota at the gateway. A tenant over its quota is
 * told so at once with a 429, `retry-after` and OpenAI-style rate-limit
 * headers (or waits up to `maxWaitMs`), instead of queueing without end
 * behind the shared model limits.
 */
export class TenantQuota {
  private readonly limiter = new Limiter();

  constructor(
    private readonly clock: Clock,
    private readonly options: TenantQuotaOptions,
  ) {}

  async admit(tenant: string): Promise<QuotaDecision> {
    for (;;) {
      const now = this.clock.now();
      if (!this.limiter.has(tenant)) this.limiter.define(tenant, { ...this.options.limits, transitMs: 0 }, now);
      const permit = this.limiter.reserve(tenant, { requests: 1, tokens: 0, inputTokens: 0, outputTokens: 0 }, now);
      if (permit.granted) {
        this.limiter.settle(permit, now);
        return { allowed: true };
      }
      if (permit.waitMs <= (this.options.maxWaitMs ?? 0)) {
        await this.clock.sleep(permit.waitMs);
        continue;
      }
      const level = this.limiter.levels(tenant, now)[0];
      return { allowed: false, retryAfterMs: permit.waitMs, limit: level?.limit ?? 0, remaining: level?.remaining ?? 0, resetMs: level?.resetMs ?? permit.waitMs };
    }
  }
}
