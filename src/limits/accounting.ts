import type { AccountingOptions } from '../contracts/provider.js';
import type { Usage } from '../contracts/types.js';
import type { Cost } from '../contracts/limiter.js';

export interface CallEstimate {
  /** Uncached input tokens, estimated before the call. */
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The output ceiling sent with the call. */
  maxOutputTokens: number;
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
