import { describe, expect, it } from 'vitest';
import { FanoutError, ProviderError } from '../contracts/errors.js';
import { backoffDelay, decideRetry, DEFAULT_RETRY } from './retry.js';

const half = { next: () => 0.5 };
const almostOne = { next: () => 0.999999 };

describe('retry policy', () => {
  it('draws full jitter below an exponential ceiling that stops at the cap', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, DEFAULT_RETRY, half))).toEqual([250, 500, 1000, 2000]);
    expect(backoffDelay(20, DEFAULT_RETRY, almostOne)).toBe(29_999);
    expect(backoffDelay(1, DEFAULT_RETRY, { next: () => 0 })).toBe(0);
  });

  it('waits at least as long as the provider asked', () => {
    const error = new ProviderError('rate_limited', '429', {
      provider: 'p',
      status: 429,
      retryAfterMs: 7000,
      retryable: true,
    });
    expect(decideRetry(error, 1, 5, DEFAULT_RETRY, half)).toEqual({ retry: true, delayMs: 7000 });
    const short = new ProviderError('rate_limited', '429', {
      provider: 'p',
      status: 429,
      retryAfterMs: 10,
      retryable: true,
    });
    expect(decideRetry(short, 3, 5, DEFAULT_RETRY, half)).toEqual({ retry: true, delayMs: 1000 });
  });

  it('stops on errors that are not retryable and when the budget is spent', () => {
    expect(decideRetry(new FanoutError('auth', '401'), 1, 5, DEFAULT_RETRY, half)).toEqual({
      retry: false,
      reason: 'not_retryable',
    });
    const retryable = new FanoutError('server_error', '500', { retryable: true });
    expect(decideRetry(retryable, 5, 5, DEFAULT_RETRY, half)).toEqual({ retry: false, reason: 'attempts_exhausted' });
  });
});
