import { FanoutError, ProviderError, type ErrorCode } from '../../contracts/errors.js';
import { openAiRateLimits, waitFromMessage } from '../rate-limit-headers.js';
import { openAiSdk } from '../sdk.js';

interface ErrorBody {
  message?: string;
  type?: string;
  code?: string | null;
}

export interface ClassifyContext {
  provider: string;
  dialect: 'openai' | 'groq';
  now: number;
  signal: AbortSignal;
}

function provider(
  code: ErrorCode,
  message: string,
  retryable: boolean,
  context: ClassifyContext,
  extra: Partial<ConstructorParameters<typeof ProviderError>[2]> = {},
): ProviderError {
  return new ProviderError(code, `${context.provider}: ${message}`, {
    provider: context.provider,
    retryable,
    ...extra,
  });
}

/**
 * Turns whatever the `openai` SDK threw into a classified `ProviderError`
 * (see PROVIDERS.md, OpenAI and Groq): what is retried, what never is, and how
 * long the provider asked to wait.
 */
export function classifyOpenAiError(error: unknown, context: ClassifyContext): unknown {
  if (context.signal.aborted) return context.signal.reason;
  const { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } = openAiSdk();
  if (error instanceof APIUserAbortError)
    return new FanoutError('cancelled', `${context.provider}: the request was aborted`);
  if (error instanceof APIConnectionTimeoutError)
    return provider('timeout', 'the request timed out', true, context, { cause: error });
  if (error instanceof APIConnectionError)
    return provider('network', `connection failed (${error.message})`, true, context, { cause: error });
  if (!(error instanceof APIError)) {
    // A connection reset while a stream is read arrives as a plain error.
    const message = error instanceof Error ? error.message : String(error);
    return provider('network', `the response broke off (${message})`, true, context, { cause: error });
  }
  const status = error.status;
  const body = (error.error ?? {}) as ErrorBody;
  const message = body.message ?? error.message;
  const headers = error.headers;
  const rateLimit = headers ? openAiRateLimits(headers, context.now, context.dialect) : undefined;
  const common = {
    status,
    requestId: headers?.get('x-request-id') ?? undefined,
    body: JSON.stringify({ type: body.type, code: body.code, message }),
    rateLimit,
    cause: error,
  };
  if (status === undefined) {
    // An error event inside a stream that had already answered 200.
    const type = `${body.type ?? ''} ${body.code ?? ''}`;
    if (/rate_limit/.test(type))
      return provider('rate_limited', `rate limited inside the stream (${message})`, true, context, common);
    if (/overload|capacity/.test(type))
      return provider('overloaded', `overloaded inside the stream (${message})`, true, context, common);
    return provider('server_error', `error inside the stream (${message})`, true, context, common);
  }
  if (status === 429) {
    if (body.code === 'insufficient_quota')
      return provider(
        'quota_exhausted',
        `quota exhausted (${message}); check the plan and billing`,
        false,
        context,
        common,
      );
    if (/^Request too large/i.test(message))
      return provider('request_too_large', `request larger than the token limit (${message})`, false, context, common);
    const retryAfterMs = rateLimit?.retryAfterMs ?? waitFromMessage(message);
    return provider('rate_limited', `rate limited (429${body.code ? ` ${body.code}` : ''})`, true, context, {
      ...common,
      retryAfterMs,
    });
  }
  if (status === 401 || status === 403)
    return provider('auth', `not authorised (${status}): ${message}`, false, context, common);
  if (status === 404) return provider('not_found', `not found (404): ${message}`, false, context, common);
  if (status === 413) return provider('request_too_large', `request too large (413)`, false, context, common);
  if (status === 400 || status === 422)
    return provider('bad_request', `bad request (${status}): ${message}`, false, context, common);
  if (status === 408 || status === 409)
    return provider('server_error', `${status} from the provider`, true, context, common);
  if (status === 498 || status === 503 || status === 529) {
    return provider('overloaded', `overloaded (${status})`, true, context, {
      ...common,
      retryAfterMs: rateLimit?.retryAfterMs,
    });
  }
  if (status >= 500) return provider('server_error', `server error (${status})`, true, context, common);
  return provider('bad_request', `unexpected status ${status}: ${message}`, false, context, common);
}
