import type { ModelCall } from '../contracts/provider.js';
import type { ReasoningSettings } from '../contracts/types.js';

/**
 * Reasoning in Anthropic's form, which Claude takes on Anthropic's API and on
 * Bedrock (there, among the model's own request fields).
 */

/** Thinking settings as Anthropic's `thinking` field. */
export function thinkingParam(
  thinking: NonNullable<ReasoningSettings['thinking']>,
): { type: 'enabled'; budget_tokens: number } | { type: 'adaptive' } | { type: 'disabled' } {
  if (thinking === 'off') return { type: 'disabled' };
  if (thinking === 'adaptive') return { type: 'adaptive' };
  return { type: 'enabled', budget_tokens: thinking.budgetTokens };
}

/** The smallest thinking budget Claude takes. */
export const MIN_THINKING_BUDGET = 1024;

/**
 * Claude needs an earlier answer's thinking blocks back exactly as they came,
 * signature included: a message whose reasoning lost its signature (text
 * alone, as `reasoning_content`) is refused, naming the message.
 */
export function unsignedThinkingRefusals(call: Pick<ModelCall, 'messages'>, provider: string): string[] {
  const refused: string[] = [];
  call.messages.forEach((message, i) => {
    if (message.reasoning?.some((b) => b.type === 'thinking' && b.signature === undefined))
      refused.push(
        `messages.${i}.thinking_blocks: ${provider} needs each thinking block back with its signature, as its answer gave it`,
      );
  });
  return refused;
}
