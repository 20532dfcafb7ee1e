import type { z } from 'zod';
import type { RateLimitInfo } from './types.js';

/**
 * Every error fanout raises is a `FanoutError` with a stable `code`. Messages
 * never contain prompts, keys or request bodies.
 */

export type ErrorCode =
  | 'invalid_request'
  | 'invalid_config'
  | 'unknown_provider'
  | 'request_too_large'
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'network'
  | 'bad_request'
  | 'auth'
  | 'forbidden'
  | 'quota_exhausted'
  | 'not_found'
  | 'cancelled'
  | 'deadline_exceeded'
  | 'retries_exhausted'
  | 'engine_closed'
  | 'illegal_transition'
  | 'unknown_task'
  | 'io_error'
  /** An answer that does not parse, or does not match the JSON Schema its request asked for. */
  | 'invalid_output';

export interface FanoutErrorOptions {
  retryable?: boolean;
  cause?: unknown;
}

export class FanoutError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: FanoutErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FanoutError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean } {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** One field of one request or config was wrong; the message names it. */
export class ValidationError extends FanoutError {
  readonly issues: readonly string[];

  constructor(code: 'invalid_request' | 'invalid_config' | 'unknown_provider', issues: readonly string[]) {
    super(code, issues.join('; '));
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

export interface ProviderErrorOptions extends FanoutErrorOptions {
  provider: string;
  status?: number;
  /** The provider's explicit wait hint, in milliseconds. */
  retryAfterMs?: number;
  requestId?: string;
  /** The response body, truncated and with secrets removed. */
  body?: string;
  /** What the provider's rate-limit headers said on this response. */
  rateLimit?: RateLimitInfo;
}

const MAX_BODY_CHARS = 500;

/** A failed call to a provider, classified once, where it is caught. */
export class ProviderError extends FanoutError {
  readonly provider: string;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly requestId?: string;
  readonly body?: string;
  readonly rateLimit?: RateLimitInfo;

  constructor(code: ErrorCode, message: string, options: ProviderErrorOptions) {
    super(code, message, options);
    this.name = 'ProviderError';
    this.provider = options.provider;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.requestId = options.requestId;
    this.body = options.body === undefined ? undefined : options.body.slice(0, MAX_BODY_CHARS);
    this.rateLimit = options.rateLimit;
  }

  override toJSON(): ReturnType<FanoutError['toJSON']> & { provider: string; status?: number; retryAfterMs?: number } {
    return { ...super.toJSON(), provider: this.provider, status: this.status, retryAfterMs: this.retryAfterMs };
  }
}

/** What one attempt did, kept on the task and on a final error. */
export interface AttemptRecord {
  attempt: number;
  startedAt: number;
  endedAt?: number;
  outcome?: 'completed' | 'failed' | 'cancelled';
  error?: { code: ErrorCode; message: string; status?: number; retryAfterMs?: number };
  requestId?: string;
}

/** A task that ran out of attempts or time; keeps every attempt. */
export class RetryError extends FanoutError {
  readonly attempts: readonly AttemptRecord[];
  readonly lastError: FanoutError;

  constructor(
    code: 'retries_exhausted' | 'deadline_exceeded',
    message: string,
    lastError: FanoutError,
    attempts: readonly AttemptRecord[],
  ) {
    super(code, message, { cause: lastError });
    this.name = 'RetryError';
    this.lastError = lastError;
    this.attempts = attempts;
  }
}

/** Turns anything thrown into a `FanoutError` without losing the original. */
export function asFanoutError(error: unknown, fallback: ErrorCode = 'server_error'): FanoutError {
  if (error instanceof FanoutError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FanoutError(fallback, message, { cause: error });
}

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
