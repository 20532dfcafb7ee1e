import type { FastifyReply } from 'fastify';
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

/** An error body in OpenAI's shape, as every route, stream and refusal of the server sends it. */
export interface ErrorBody {
  error: { code: string; message: string; type: string };
}

/**
 * The one way the server writes an error body. `type` is OpenAI's: by default
 * `invalid_request_error` for the client's mistakes (a status below 500) and
 * `server_error` otherwise.
 */
export function errorBody(code: string, message: string, typeOrStatus: string | number = 500): ErrorBody {
  const type =
    typeof typeOrStatus === 'string' ? typeOrStatus : typeOrStatus < 500 ? 'invalid_request_error' : 'server_error';
  return { error: { code, message, type } };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
}

/** An error as an HTTP answer; never a prompt, never a key. */
export function httpError(error: unknown): HttpError {
  if (error instanceof FanoutError) {
    const status = STATUS[error.code] ?? 500;
    return { status, body: errorBody(error.code, error.message, status) };
  }
  return { status: 500, body: errorBody('internal_error', 'internal error') };
}

/** Answers `reply` with `error` as an HTTP error. */
export function send(reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body } = httpError(error);
  return reply.code(status).send(body);
}
