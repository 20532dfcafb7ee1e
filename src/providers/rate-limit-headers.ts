import type { RateLimitInfo } from '../contracts/types.js';

/** Anything with a `get(name)` for headers: the fetch `Headers` the SDKs hand back, or a test's map. */
export interface HeaderSource {
  get(name: string): string | null | undefined;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/**
 * A Go-style duration, as OpenAI and Groq send resets: `6m0s`, `1s`, `84ms`,
 * `2m59.56s`, `1h2m`. Number+unit pairs, decimals allowed; `ms` is tried
 * before `m`. Returns milliseconds, or undefined for anything else.
 */
export function parseDuration(text: string | null | undefined): number | undefined {
  if (!text) return undefined;
  const trimmed = text.trim();
  const pair = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = pair.exec(trimmed); match; match = pair.exec(trimmed)) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    consumed = pair.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length) return undefined;
  return total;
}

function number(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  // Some gateways send -1 or 0 for "unknown" (seen from Azure OpenAI): a hint only, never trusted below zero.
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * The provider's wait, from `retry-after-ms` (milliseconds, Azure and the
 * OpenAI SDKs), else `retry-after` (seconds, or an HTTP date relative to `now`).
 */
export function retryAfterMs(headers: HeaderSource, now: number): number | undefined {
  const ms = number(headers.get('retry-after-ms'));
  if (ms !== undefined) return Math.ceil(ms);
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = number(value);
  if (seconds !== undefined) return Math.ceil(seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * OpenAI's rate-limit headers (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`).
 * Groq sends the same names, but its request headers count per **day**: with
 * `dialect: 'groq'` they are reported as `requestsPerDay*` instead.
 */
export function openAiRateLimits(
  headers: HeaderSource,
  now: number,
  dialect: 'openai' | 'groq' = 'openai',
): RateLimitInfo {
  const info: RateLimitInfo = {};
  const requestsLimit = number(headers.get('x-ratelimit-limit-requests'));
  const requestsRemaining = number(headers.get('x-ratelimit-remaining-requests'));
  const requestsResetMs = parseDuration(headers.get('x-ratelimit-reset-requests'));
  if (dialect === 'groq') {
    if (requestsLimit !== undefined) info.requestsPerDayLimit = requestsLimit;
    if (requestsRemaining !== undefined) info.requestsPerDayRemaining = requestsRemaining;
    if (requestsResetMs !== undefined) info.requestsPerDayResetMs = requestsResetMs;
  } else {
    if (requestsLimit !== undefined) info.requestsLimit = requestsLimit;
    if (requestsRemaining !== undefined) info.requestsRemaining = requestsRemaining;
    if (requestsResetMs !== undefined) info.requestsResetMs = requestsResetMs;
  }
  const tokensLimit = number(headers.get('x-ratelimit-limit-tokens'));
  const tokensRemaining = number(headers.get('x-ratelimit-remaining-tokens'));
  const tokensResetMs = parseDuration(headers.get('x-ratelimit-reset-tokens'));
  if (tokensLimit !== undefined) info.tokensLimit = tokensLimit;
  if (tokensRemaining !== undefined) info.tokensRemaining = tokensRemaining;
  if (tokensResetMs !== undefined) info.tokensResetMs = tokensResetMs;
  const wait = retryAfterMs(headers, now);
  if (wait !== undefined) info.retryAfterMs = wait;
  return info;
}

/**
 * The wait an OpenAI 429 states in its message ("Please try again in
 * 1.146s", "in 84ms", "in 6m0s"), for when no header says it.
 */
export function waitFromMessage(message: string): number | undefined {
  const match = /try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)/i.exec(message);
  return match ? parseDuration(match[1]) : undefined;
}

/** Milliseconds from `now` to an RFC 3339 instant (Anthropic's resets), never negative. */
function untilInstant(text: string | null | undefined, now: number): number | undefined {
  if (!text) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
 * headers (`tokens-*` only where the input and output ones are absent: it summarises them). Resets are absolute instants, so they carry the local clock's skew:
 * `retry-after` is preferred where both are given.
 */
export function anthropicRateLimits(headers: HeaderSource, now: number): RateLimitInfo {
  const info: RateLimitInfo = {};
  const read = (kind: string) => ({
    limit: number(headers.get(`anthropic-ratelimit-${kind}-limit`)),
    remaining: number(headers.get(`anthropic-ratelimit-${kind}-remaining`)),
    resetMs: untilInstant(headers.get(`anthropic-ratelimit-${kind}-reset`), now),
  });
  const requests = read('requests');
  const tokens = read('tokens');
  const input = read('input-tokens');
  const output = read('output-tokens');
  const set = <K extends keyof RateLimitInfo>(key: K, value: RateLimitInfo[K] | undefined): void => {
    if (value !== undefined) info[key] = value;
  };
  set('requestsLimit', requests.limit);
  set('requestsRemaining', requests.remaining);
  set('requestsResetMs', requests.resetMs);
  // tokens-* is the tightest token limit in force, a summary of the input and output ones: a bucket of
  // input plus output built from it would hold an input-heavy run to the output limit. Only a response
  // without input and output headers (a workspace limit alone) makes it the token limit.
  const split = input.limit !== undefined || output.limit !== undefined;
  if (!split) {
    set('tokensLimit', tokens.limit);
    set('tokensRemaining', tokens.remaining);
    set('tokensResetMs', tokens.resetMs);
  }
  set('inputTokensLimit', input.limit);
  set('inputTokensRemaining', input.remaining);
  set('inputTokensResetMs', input.resetMs);
  set('outputTokensLimit', output.limit);
  set('outputTokensRemaining', output.remaining);
  set('outputTokensResetMs', output.resetMs);
  set('retryAfterMs', retryAfterMs(headers, now));
  return info;
}
