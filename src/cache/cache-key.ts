import { createHash } from 'node:crypto';
import type { TaskRequest } from '../contracts/types.js';

/**
 * The fields of a request that can change its answer. Everything else
 * (priority, label, attempts, timeouts, deadline, streaming, cache options)
 * only changes how fanout runs it, and stays out of the key.
 */
export interface AnswerFields {
  model: string;
  system: string | null;
  messages: TaskRequest['messages'];
  maxTokens: number;
  temperature: number | null;
  topP: number | null;
  stop: string[] | null;
  seed: number | null;
  providerOptions: Record<string, unknown> | null;
}

export function answerFields(request: TaskRequest, maxTokens: number): AnswerFields {
  return {
    model: request.model,
    system: request.system ?? null,
    // Cache marks change what a call costs, not what it answers.
    messages: request.messages.map(({ role, content }) => ({ role, content })),
    maxTokens,
    temperature: request.temperature ?? null,
    topP: request.topP ?? null,
    stop: request.stop ?? null,
    seed: request.seed ?? null,
    providerOptions: request.providerOptions ?? null,
  };
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
