import { createRequire } from 'node:module';
import type { ModelRequest } from '../contracts/types.js';

/** Tokens a chat format adds per message (role markers) and per reply (priming). */
const PER_MESSAGE_OVERHEAD = 4;
const PER_REQUEST_OVERHEAD = 3;

type CountTokens = (text: string) => number;
let countTokens: CountTokens | undefined;

/**
 * The o200k tokenizer, loaded on first use: its tables take about 70 MB, which
 * a process whose providers count their own tokens (the mock does) never pays.
 */
function tokenizer(): CountTokens {
  if (!countTokens) {
    const require = createRequire(import.meta.url);
    countTokens = (require('gpt-tokenizer') as typeof import('gpt-tokenizer')).countTokens;
  }
  return countTokens;
}

/**
 * Input tokens of a request, counted with the o200k tokenizer (gpt-tokenizer,
 * pure JS, no network). Exact for recent OpenAI models and within a few
 * percent for other vendors' tokenizers; `settle` corrects the difference
 * once the provider reports real usage.
 */
export function estimateInputTokens(request: Pick<ModelRequest, 'messages' | 'system'>): number {
  const count = tokenizer();
  let total = PER_REQUEST_OVERHEAD;
  if (request.system) total += PER_MESSAGE_OVERHEAD + count(request.system);
  for (const message of request.messages) total += PER_MESSAGE_OVERHEAD + count(message.content);
  return total;
}

/** Tokens of a piece of text, by the o200k tokenizer. */
export function countTextTokens(text: string): number {
  return tokenizer()(text);
}
