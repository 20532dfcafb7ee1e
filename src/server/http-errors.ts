import { FanoutError, type ErrorCode } from '../contracts/errors.js';

/** HTTP status for each error code, in one place. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_request: 400,
  invalid_config: 400,
  unknown_provider: 400,
  request_too_large: 400,
  bad_request: 400,
  auth: 401,
  forbidden: 403,
  not_found: 404,
  unknown_task: 404,
  cancelled: 409,
  rate_limited: 429,
  quota_exhausted: 429,
  engine_closed: 503,
  overloaded: 503,
  timeout: 504,
  deadline_exceeded: 504,
  server_error: 502,
  network: 502,
  retries_exhausted: 502,
};

export interface HttpError {
  status: number;
  body: { error: { code: ErrorCode | 'internal_error'; message: string; type: string } };
}

/** An error as an HTTP answer in OpenAI's error shape; never a prompt, never a key. */
export function httpError(error: unknown): HttpError {
  if (error instanceof FanoutError) {
    const status = STATUS[error.code] ?? 500;
    return {
      status,
      body: {
        error: {
          code: error.code,
          message: error.message,
          type: status < 500 ? 'invalid_request_error' : 'server_error',
        },
      },
    };
  }
  return { status: 500, body: { error: { code: 'internal_error', message: 'internal error', type: 'server_error' } } };
}
