import type { Usage } from '../core/types.js';
import type { Cost } from './limiter.js';

/**
 * How a provider charges its rate limits, so fanout charges its own buckets
 * the same way (see PROVIDERS.md):
 *
 * - `openai`: tokens are charged at admission as prompt + max_tokens and are
 *   not refunded when the reply is shorter (OpenAI, Groq and most
 *   OpenAI-compatible servers). Usage above the charge is debited.
 * - `anthropic`: input tokens per minute count uncached input + cache writes
 *   (cache reads are free, except on Haiku 3, Haiku 3.5 and Opus 3); output
 *   tokens per minute are charged max_tokens at admission and refunded down to
 *   the real output at the end.
 * - `bedrock`: input + cache reads + cache writes + max_tokens × burndown are
 *   reserved at the start and settled to input + cache writes + output ×
 *   burndown (burndown 5 on Claude 3.7 and later, 1 otherwise).
 */
export type AccountingRule = 'openai' | 'anthropic' | 'bedrock';

export interface CallEstimate {
  /** Uncached input tokens, estimated before the call. */
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The output ceiling sent with the call. */
  maxOutputTokens: number;
}

export interface AccountingOptions {
  rule: AccountingRule;
  /** Quota tokens one output token uses (Bedrock). Default 1. */
  outputBurndown?: number;
  /** Whether cache reads count against input limits (Anthropic's older models). Default false. */
  cacheReadsCount?: boolean;
}

function cost(requests: number, inputTokens: number, outputTokens: number, tokens = inputTokens + outputTokens): Cost {
  return { requests, tokens, inputTokens, outputTokens };
}

/** The charge taken when a call is admitted. */
export function admissionCost(options: AccountingOptions, estimate: CallEstimate): Cost {
  const burndown = options.outputBurndown ?? 1;
  switch (options.rule) {
    case 'openai': {
      const input = estimate.inputTokens + estimate.cacheReadTokens + estimate.cacheWriteTokens;
      return cost(1, input, estimate.maxOutputTokens);
    }
    case 'anthropic': {
      const reads = options.cacheReadsCount ? estimate.cacheReadTokens : 0;
      return cost(1, estimate.inputTokens + estimate.cacheWriteTokens + reads, estimate.maxOutputTokens);
    }
    case 'bedrock': {
      const input = estimate.inputTokens + estimate.cacheReadTokens + estimate.cacheWriteTokens;
      return cost(1, input, estimate.maxOutputTokens * burndown);
    }
  }
}

/** The charge a call finally stands at, given what it really used. */
export function settledCost(options: AccountingOptions, reserved: Cost, usage: Usage): Cost {
  const burndown = options.outputBurndown ?? 1;
  switch (options.rule) {
    case 'openai': {
      const input = usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
      return cost(
        1,
        Math.max(reserved.inputTokens, input),
        Math.max(reserved.outputTokens, usage.outputTokens),
        Math.max(reserved.tokens, input + usage.outputTokens),
      );
    }
    case 'anthropic': {
      const reads = options.cacheReadsCount ? usage.cacheReadTokens : 0;
      return cost(1, usage.inputTokens + usage.cacheWriteTokens + reads, usage.outputTokens);
    }
    case 'bedrock':
      return cost(1, usage.inputTokens + usage.cacheWriteTokens, usage.outputTokens * burndown);
  }
}

/**
 * What a failed attempt is left charged: the provider counted the request and
 * read the prompt, but wrote no output.
 */
export function failedCost(reserved: Cost): Cost {
  return cost(1, reserved.inputTokens, 0);
}

/** Burndown for Bedrock model ids: 5 on Claude 3.7 and every later Claude (4 and up), else 1. */
export function bedrockBurndown(modelId: string): number {
  return /claude-3-7|claude-[a-z]+-[4-9]|claude-[4-9]/.test(modelId) ? 5 : 1;
}
