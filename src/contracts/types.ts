/**
 * fanout's own request and result shapes. Providers translate these to and
 * from their vendor formats; nothing here names a vendor type.
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

/**
 * A piece of a message: text; an image by URL (`https:` or a base64 `data:`
 * URL); or a document (a PDF, say) as a base64 `data:` URL, or by the id of a
 * file uploaded to the provider (OpenAI's Files API).
 */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; url: string; detail?: 'auto' | 'low' | 'high' }
  | { type: 'file'; url?: string; fileId?: string; filename?: string };

/** A call of one of the request's tools, as the model wrote it. */
export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as JSON text, exactly as the model wrote them (they may not parse). */
  arguments: string;
}

/** A piece of a tool call as a stream tells it: the first brings its id and name, the rest pieces of its arguments. */
export interface ToolCallDelta {
  /** Which of the answer's tool calls, from 0. */
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

/**
 * A block of a model's reasoning as its provider returned it: thinking text
 * with the provider's signature, or reasoning the provider hid (opaque
 * `data`). A tool conversation hands them back unchanged on its next turn,
 * as Anthropic requires.
 */
export type ReasoningBlock =
  { type: 'thinking'; text: string; signature?: string } | { type: 'redacted'; data: string };

/** How much a model may think before it answers. */
export interface ReasoningSettings {
  /**
   * How hard to think, in the provider's words: OpenAI `reasoning_effort`
   * (`none`, `minimal`, `low`, `medium`, `high`, `xhigh`), Anthropic
   * `output_config.effort` (`low`, `medium`, `high`, `xhigh`, `max`), Amazon
   * Nova's `maxReasoningEffort` on Bedrock (`low`, `medium`, `high`).
   */
  effort?: string;
  /**
   * Extended thinking (Anthropic, Claude on Bedrock): up to `budgetTokens`
   * tokens of it (at least 1,024, fewer than `maxTokens`), `adaptive` (the
   * model decides), or `off`.
   */
  thinking?: { budgetTokens: number } | 'adaptive' | 'off';
}

export interface ChatMessage {
  role: Role;
  /** Text, or parts (text and images). */
  content: string | ContentPart[];
  /**
   * Mark the prompt up to and including this message for the provider's
   * prompt cache (Anthropic `cache_control`, Bedrock `cachePoint`; OpenAI caches
   * on its own). It changes what a call costs, never what it answers.
   */
  cache?: boolean;
  /** An assistant message's calls of tools. */
  toolCalls?: ToolCall[];
  /** A `tool` message: the call it answers. */
  toolCallId?: string;
  /** An assistant message's reasoning, as its answer returned it (`ModelResult.reasoning`). */
  reasoning?: ReasoningBlock[];
  /** The speaker's name (OpenAI `name`). */
  name?: string;
}

/** A tool the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: Record<string, unknown>;
  /** Ask the provider to hold the arguments to the schema exactly. */
  strict?: boolean;
}

/** Whether the model may, must or must not call a tool, or must call one named tool. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** The form of the answer: free text, any JSON object, or JSON that matches a schema. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; description?: string; strict?: boolean };

/** A message's text: its content, or the text of its parts (images and documents left out). */
export function textOf(content: string | readonly ContentPart[]): string {
  if (typeof content === 'string') return content;
  let text = '';
  for (const part of content) if (part.type === 'text') text += part.text;
  return text;
}

/** One model call as a user asks for it. `model` is `provider:model`. */
export interface ModelRequest {
  /** `provider:model`, for example `mock:reviewer` or `openai:gpt-4o-mini`. */
  model: string;
  messages: ChatMessage[];
  /** A system prompt; sent before `messages`. */
  system?: string;
  /** Mark the system prompt for the provider's prompt cache (see `ChatMessage.cache`). */
  cacheSystem?: boolean;
  /**
   * Upper bound on output tokens. Limits reserve this much output at
   * admission; without it they reserve the engine's `defaultMaxTokens`, and an
   * OpenAI-compatible provider is sent no ceiling at all.
   */
  maxTokens?: number;
  /**
   * The name an OpenAI-compatible provider is sent `maxTokens` under:
   * `max_completion_tokens` (which OpenAI's reasoning models require) or
   * `max_tokens` (the default). Other providers have one name of their own.
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  temperature?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
  /** Ask the provider to stream; deltas arrive as `task-delta` events. */
  stream?: boolean;
  /** `optimized`: latency-optimised inference where the provider offers it (Bedrock); ignored elsewhere. */
  latency?: 'standard' | 'optimized';
  /** Passed through to the provider untouched. */
  providerOptions?: Record<string, unknown>;
  /** Tools the model may call. */
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** May the model call several tools in one turn (OpenAI `parallel_tool_calls`). */
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  /** How much the model may think before it answers. */
  reasoning?: ReasoningSettings;
  /**
   * Check a JSON answer before the task completes (default true when
   * `responseFormat` asks for JSON): one that does not parse or match the
   * schema is asked again, within the task's attempts.
   */
  checkOutput?: boolean;
  /**
   * Fields of an OpenAI chat completions request that fanout does not read
   * (`logprobs`, `presence_penalty`, fields newer than fanout, …): sent as they
   * are to an OpenAI-compatible provider, refused by name by any other.
   */
  passthrough?: Record<string, unknown>;
}

/** A request plus how fanout should treat it. */
export interface TaskRequest extends ModelRequest {
  /** Higher runs first. Default 0. Equal priorities run in submission order. */
  priority?: number;
  /** Attempts allowed, the first included. Default from the engine's retry policy. */
  maxAttempts?: number;
  /** Milliseconds one attempt may take before it is aborted and counted as a timeout. */
  attemptTimeoutMs?: number;
  /** Milliseconds from submission after which the task fails instead of waiting or retrying. */
  deadlineMs?: number;
  /** Caller's label, echoed in events and results (a batch's custom_id). */
  label?: string;
  /** Whose request this is. Cache entries are never shared across tenants. Default "default". */
  tenant?: string;
  /**
   * Result cache and single-flight for this request. Unset: used when the
   * engine's cache is on and `temperature` is 0 (an unset temperature means
   * the provider's default, usually 1, whose answers are meant to differ).
   * `true` or `{ ttlMs }`: used whatever the temperature. `false`: never.
   */
  cache?: boolean | { ttlMs?: number };
}

/** Token counts, with input split by how the provider cached it. */
export interface Usage {
  /** Input tokens that were neither read from nor written to a prompt cache. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export const ZERO_USAGE: Readonly<Usage> = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
});

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  };
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'other';

/**
 * What a provider said about its limits on one response, in one shape for all
 * providers. Every field is optional: headers are hints and are often missing.
 */
export interface RateLimitInfo {
  requestsLimit?: number;
  requestsRemaining?: number;
  /** Milliseconds until the request bucket is full again. */
  requestsResetMs?: number;
  tokensLimit?: number;
  tokensRemaining?: number;
  tokensResetMs?: number;
  /** Input and output tokens per minute (Anthropic's ITPM and OTPM). */
  inputTokensLimit?: number;
  inputTokensRemaining?: number;
  inputTokensResetMs?: number;
  outputTokensLimit?: number;
  outputTokensRemaining?: number;
  outputTokensResetMs?: number;
  /** Requests per day (Groq sends these under the per-request header names). */
  requestsPerDayLimit?: number;
  requestsPerDayRemaining?: number;
  requestsPerDayResetMs?: number;
  /** The provider's explicit wait, from retry-after-ms or retry-after. */
  retryAfterMs?: number;
}

/** One token of an answer with its log probability, and the likeliest alternatives (OpenAI's `logprobs.content`). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] | null }>;
}

export interface ModelResult {
  text: string;
  /** The tools the model called, when it called any (finish reason `tool_calls`). */
  toolCalls?: ToolCall[];
  /** The model's refusal to answer, where the provider says so apart from the text. */
  refusal?: string;
  /** The model's reasoning, where the provider returns it: hand it back in the assistant message of the next turn. */
  reasoning?: ReasoningBlock[];
  /** The answer's tokens with their log probabilities, when the request asked for them (`passthrough.logprobs`, OpenAI-compatible providers). */
  logprobs?: TokenLogprob[];
  /** The answer parsed, when the request asked for JSON (`responseFormat`) and fanout checked it. */
  object?: unknown;
  usage: Usage;
  finishReason: FinishReason;
  /**
   * Set when the answer did not come from a call of this task: `stored` from
   * the result cache, `in-flight` from an identical call that was running.
   * `ageMs` is how old the answer was when it was handed over.
   */
  cache?: { source: 'stored' | 'in-flight'; ageMs: number };
  /** The model that answered, as the provider named it. */
  model: string;
  /** The provider's request id, for support tickets. */
  requestId?: string;
  rateLimit?: RateLimitInfo;
}
