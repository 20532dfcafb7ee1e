import { createRequire } from 'node:module';
import { textOf, type ModelRequest } from '../contracts/types.js';

/**
 * Tokens charged at admission for one image: OpenAI's count for a 1024 × 1024
 * image at high detail (85 + 4 tiles × 170), about Anthropic's for 1.1
 * megapixels (w × h / 750 ≈ 1,400, capped lower by its resizing to 1,568 px).
 * The provider's own count settles the difference after the call.
 */
export const IMAGE_TOKENS = 765;

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
export function estimateInputTokens(
  request: Pick<ModelRequest, 'messages' | 'system' | 'tools' | 'responseFormat'>,
): number {
  const count = tokenizer();
  let total = PER_REQUEST_OVERHEAD;
  if (request.system) total += PER_MESSAGE_OVERHEAD + count(request.system);
  for (const message of request.messages) {
    total += PER_MESSAGE_OVERHEAD + count(textOf(message.content));
    if (typeof message.content !== 'string')
      for (const part of message.content) if (part.type === 'image') total += IMAGE_TOKENS;
    if (message.toolCalls) for (const call of message.toolCalls) total += count(call.name) + count(call.arguments);
  }
  if (request.tools) total += count(JSON.stringify(request.tools));
  if (request.responseFormat?.type === 'json_schema') total += count(JSON.stringify(request.responseFormat.schema));
  return total;
}

/** Tokens of a piece of text, by the o200k tokenizer. */
export function countTextTokens(text: string): number {
  return tokenizer()(text);
}
