import { createHash } from 'node:crypto';
import type { TaskRequest } from '../contracts/types.js';

/**
 * Request fields that only change how fanout runs a call (its place in the
 * queue, its attempts and time, its tenant, streaming, cache options) or what
 * it costs (prompt-cache marks). Every other field can change the answer and
 * is part of the key, fields added later included: forgetting one here makes
 * a key too narrow (a missed hit), never too wide (a wrong answer served).
 */
const RUN_ONLY_FIELDS: ReadonlySet<string> = new Set([
  'priority',
  'maxAttempts',
  'attemptTimeoutMs',
  'deadlineMs',
  'label',
  'tenant',
  'cache',
  'stream',
  'cacheSystem',
]);

/**
 * The fields of a request that can change its answer: all but the run-only
 * ones, messages without their cache marks, and the output ceiling as sent
 * (`maxTokens`, the request's or the default it is reserved with, and whether
 * the request named it: an OpenAI-compatible provider is sent none otherwise).
 */
export function answerFields(request: TaskRequest, maxTokens: number): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(request)) if (!RUN_ONLY_FIELDS.has(name)) fields[name] = value;
  fields.messages = request.messages.map(({ cache: _mark, ...message }) => message);
  fields.maxTokens = maxTokens;
  fields.maxTokensNamed = request.maxTokens !== undefined;
  return fields;
}

/** JSON with object keys sorted at every depth, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The cache key of a request for a tenant: a SHA-256 of the tenant and the
 * canonical answer fields. The tenant is part of what is hashed, so two
 * tenants never share an entry, whatever they send.
 */
export function cacheKey(tenant: string, request: TaskRequest, maxTokens: number): string {
  return createHash('sha256')
    .update(tenant)
    .update('\u0000')
    .update(canonicalJson(answerFields(request, maxTokens)))
    .digest('hex');
}
