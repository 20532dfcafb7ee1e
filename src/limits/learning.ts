import type { RateLimitInfo } from '../contracts/types.js';
import type { ObservedLimit } from '../contracts/limiter.js';

/** A provider's rate-limit information as observations of the limiter's dimensions. */
export function observedLimits(info: RateLimitInfo): ObservedLimit[] {
  const observed: ObservedLimit[] = [];
  const add = (dimension: ObservedLimit['dimension'], limit?: number, remaining?: number, resetMs?: number): void => {
    if (limit !== undefined || remaining !== undefined) observed.push({ dimension, limit, remaining, resetMs });
  };
  add('requestsPerMinute', info.requestsLimit, info.requestsRemaining, info.requestsResetMs);
  add('requestsPerDay', info.requestsPerDayLimit, info.requestsPerDayRemaining, info.requestsPerDayResetMs);
  add('tokensPerMinute', info.tokensLimit, info.tokensRemaining, info.tokensResetMs);
  add('inputTokensPerMinute', info.inputTokensLimit, info.inputTokensRemaining, info.inputTokensResetMs);
  add('outputTokensPerMinute', info.outputTokensLimit, info.outputTokensRemaining, info.outputTokensResetMs);
  return observed;
}
