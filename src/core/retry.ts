import type { FanoutError } from '../contracts/errors.js';
import { ProviderError } from '../contracts/errors.js';
import type { Random } from '../contracts/random.js';

export interface RetryOptions {
  /** Attempts per task, the first included. Default 5. */
  maxAttempts?: number;
  /** Backoff base in milliseconds: the cap of the first retry's jitter. Default 500. */
  baseDelayMs?: number;
  /** Largest backoff in milliseconds, before any server wait hint. Default 30,000. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/**
 * Full-jitter exponential backoff: a uniform draw in [0, min(max, base × 2^(n−1)))
 * after the n-th failed attempt, from the injected random source.
 */
export function backoffDelay(failedAttempts: number, options: Required<RetryOptions>, random: Random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (failedAttempts - 1));
  return Math.floor(random.next() * ceiling);
}

export function serverWaitHint(error: FanoutError): number | undefined {
  return error instanceof ProviderError ? error.retryAfterMs : undefined;
}

export type RetryDecision =
  { retry: true; delayMs: number } | { retry: false; reason: 'not_retryable' | 'attempts_exhausted' };

/**
 * Whether and when to try again after `failedAttempts` attempts ended in
 * `error`. The wait is never shorter than the provider's hint (retry-after-ms,
 * retry-after), and is the longer of that hint and the jittered backoff.
 */
export function decideRetry(
  error: FanoutError,
  failedAttempts: number,
  maxAttempts: number,
  options: Required<RetryOptions>,
  random: Random,
): RetryDecision {
  if (!error.retryable) return { retry: false, reason: 'not_retryable' };
  if (failedAttempts >= maxAttempts) return { retry: false, reason: 'attempts_exhausted' };
  const backoff = backoffDelay(failedAttempts, options, random);
  return { retry: true, delayMs: Math.max(serverWaitHint(error) ?? 0, backoff) };
}
