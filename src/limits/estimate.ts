import { countTokens } from 'gpt-tokenizer';
import type { ModelRequest } from '../core/types.js';

/** Tokens a chat format adds per message (role markers) and per reply (priming). */
const PER_MESSAGE_OVERHEAD = 4;
const PER_REQUEST_OVERHEAD = 3;

/**
 * Input tokens of a request, counted with the o200k tokenizer (gpt-tokenizer,
 * pure JS, no network). Exact for recent OpenAI models and within a few
 * percent for other vendors' tokenizers; `settle` corrects the difference
 * once the provider reports real usage.
 */
export function estimateInputTokens(request: Pick<ModelRequest, 'messages' | 'system'>): number {
  let total = PER_REQUEST_OVERHEAD;
  if (request.system) total += PER_MESSAGE_OVERHEAD + countTokens(request.system);
  for (const message of request.messages) total += PER_MESSAGE_OVERHEAD + countTokens(message.content);
  return total;
}
