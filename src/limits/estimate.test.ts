import { describe, expect, it } from 'vitest';
import { estimateInputTokens } from './estimate.js';

describe('estimateInputTokens', () => {
  it('counts the estimate of each text plus the chat format overhead', () => {
    // "hello world" is 2 tokens (as in o200k); 3 per request + 4 per message.
    expect(estimateInputTokens({ messages: [{ role: 'user', content: 'hello world' }] })).toBe(3 + 4 + 2);
    expect(estimateInputTokens({ system: 'hello world', messages: [{ role: 'user', content: 'hello world' }] })).toBe(
      3 + 8 + 4,
    );
  });
});
