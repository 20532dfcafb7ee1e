import type { FastifyReply } from 'fastify';
import { FanoutError, ValidationError, type ErrorCode } from '../contracts/errors.js';
import { errorBody, paramOf, type ErrorBody } from '../openai/wire.js';

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
  invalid_output: 502,
};

export interface HttpError {
  status: number;
  body: ErrorBody;
}

/** An error as an HTTP answer; never a prompt, never a key. */
export function httpError(error: unknown): HttpError {
  if (error instanceof FanoutError) {
    const status = STATUS[error.code] ?? 500;
    const param = error instanceof ValidationError ? paramOf(error.issues[0]) : null;
    return { status, body: errorBody(error.code, error.message, status, param) };
  }
  return { status: 500, body: errorBody('internal_error', 'internal error') };
}

/** Answers `reply` with `error` as an HTTP error. */
export function send(reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body } = httpError(error);
  return reply.code(status).send(body);
}
