import type { FanoutError } from '../contracts/errors.js';
import type { TaskStatus } from '../core/task.js';
import type { Usage } from '../contracts/types.js';
import { chatCompletionBody, type ChatCompletion } from '../openai/wire.js';

/**
 * One output line per input line, in OpenAI's batch output shape (`id`,
 * `custom_id`, `response` with `status_code` and a chat.completion `body`, or
 * `error`) so existing tooling reads it, plus a `fanout` object with the line
 * number, model, attempts, usage and time split.
 */
export interface OutputLine {
  id: string | null;
  custom_id: string | null;
  response: { status_code: number; request_id: string | null; body: ChatCompletion } | null;
  error: { code: string; message: string; status?: number } | null;
  fanout: {
    line: number;
    model?: string;
    state?: string;
    attempts: number;
    /** Set when the answer came from the result cache (`stored`) or an identical call in flight (`in-flight`). */
    cache?: { source: string; age_ms: number };
    /** Why earlier attempts failed, when any did. */
    attempt_errors?: Array<{ attempt: number; code: string; status?: number }>;
    usage?: { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number };
    timing?: { queued_ms: number; rate_limited_ms: number; provider_ms: number; total_ms: number };
  };
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** A completed task as OpenAI's `chat.completion` object. */
/** A completed task as OpenAI's completion; more tasks (a request's `n`) are more choices. */
export function chatCompletion(status: TaskStatus, ...more: TaskStatus[]): ChatCompletion {
  const resultOf = (s: TaskStatus) => {
    if (!s.result) throw new Error(`task ${s.id} has no result`);
    return s.result;
  };
  const created = Math.floor((status.endedAt ?? status.submittedAt) / 1000);
  return chatCompletionBody(status.id, created, resultOf(status), more.map(resultOf));
}

export function completedLine(line: number, customId: string | null, status: TaskStatus): OutputLine {
  const result = status.result;
  if (!result) throw new Error(`task ${status.id} has no result`);
  return {
    id: status.id,
    custom_id: customId,
    response: {
      status_code: 200,
      request_id: result.requestId ?? null,
      body: chatCompletion(status),
    },
    error: null,
    fanout: {
      ...common(line, status),
      usage: usageOf(status),
      ...(result.cache ? { cache: { source: result.cache.source, age_ms: round(result.cache.ageMs) } } : {}),
    },
  };
}

export function failedLine(
  line: number,
  customId: string | null,
  error: FanoutError | NonNullable<TaskStatus['error']>,
  status?: TaskStatus,
): OutputLine {
  const summary: OutputLine['error'] = { code: error.code, message: error.message };
  if ('status' in error && typeof error.status === 'number') summary.status = error.status;
  return {
    id: status?.id ?? null,
    custom_id: customId,
    response: null,
    error: summary,
    fanout: status ? common(line, status) : { line, attempts: 0 },
  };
}

function common(line: number, status: TaskStatus): OutputLine['fanout'] {
  const t = status.timing;
  const errors = status.attempts
    .filter((a) => a.error)
    .map((a) => ({ attempt: a.attempt, code: a.error?.code as string, status: a.error?.status }));
  return {
    line,
    model: status.model,
    state: status.state,
    attempts: status.attempts.length,
    ...(errors.length > 0 ? { attempt_errors: errors } : {}),
    timing: {
      queued_ms: round(t.queuedMs),
      rate_limited_ms: round(t.rateLimitedMs),
      provider_ms: round(t.providerMs),
      total_ms: round(t.totalMs),
    },
  };
}

function usageOf(status: TaskStatus): NonNullable<OutputLine['fanout']['usage']> | undefined {
  const u = status.usage;
  if (!u) return undefined;
  return {
    input_tokens: u.inputTokens,
    output_tokens: u.outputTokens,
    cache_read_tokens: u.cacheReadTokens,
    cache_write_tokens: u.cacheWriteTokens,
  };
}
