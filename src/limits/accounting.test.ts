import { describe, expect, it } from 'vitest';
import { admissionCost, bedrockBurndown, failedCost, settledCost } from './accounting.js';

const estimate = { inputTokens: 1000, cacheReadTokens: 200, cacheWriteTokens: 100, maxOutputTokens: 500 };
const usage = { inputTokens: 900, cacheReadTokens: 200, cacheWriteTokens: 100, outputTokens: 120 };

describe('accounting', () => {
  it('openai: charges prompt + max_tokens and never refunds a shorter reply', () => {
    const reserved = admissionCost({ rule: 'openai' }, estimate);
    expect(reserved).toEqual({ requests: 1, tokens: 1800, inputTokens: 1300, outputTokens: 500 });
    expect(settledCost({ rule: 'openai' }, reserved, usage)).toEqual(reserved);
    const longer = { ...usage, inputTokens: 2000, outputTokens: 600 };
    expect(settledCost({ rule: 'openai' }, reserved, longer)).toEqual({
      requests: 1,
      tokens: 2900,
      inputTokens: 2300,
      outputTokens: 600,
    });
  });

  it('anthropic: input counts uncached + cache writes; output is refunded to actual', () => {
    const reserved = admissionCost({ rule: 'anthropic' }, estimate);
    expect(reserved).toEqual({ requests: 1, tokens: 1600, inputTokens: 1100, outputTokens: 500 });
    expect(settledCost({ rule: 'anthropic' }, reserved, usage)).toEqual({
      requests: 1,
      tokens: 1120,
      inputTokens: 1000,
      outputTokens: 120,
    });
  });

  it('anthropic: cache reads count on the older models that charge them', () => {
    const options = { rule: 'anthropic' as const, cacheReadsCount: true };
    expect(admissionCost(options, estimate).inputTokens).toBe(1300);
    expect(settledCost(options, admissionCost(options, estimate), usage).inputTokens).toBe(1200);
  });

  it('bedrock: reserves input + cache + max_tokens × burndown and settles without cache reads', () => {
    const options = { rule: 'bedrock' as const, outputBurndown: 5 };
    const reserved = admissionCost(options, estimate);
    expect(reserved).toEqual({ requests: 1, tokens: 1300 + 2500, inputTokens: 1300, outputTokens: 2500 });
    expect(settledCost(options, reserved, usage)).toEqual({
      requests: 1,
      tokens: 1000 + 600,
      inputTokens: 1000,
      outputTokens: 600,
    });
  });

  it('a failed attempt keeps its request and input, not its output', () => {
    expect(failedCost({ requests: 1, tokens: 1800, inputTokens: 1300, outputTokens: 500 })).toEqual({
      requests: 1,
      tokens: 1300,
      inputTokens: 1300,
      outputTokens: 0,
    });
  });

  it('burns output at 5× on Claude 3.7 and Claude 4 models on Bedrock', () => {
    expect(bedrockBurndown('anthropic.claude-sonnet-4-5-20250929-v1:0')).toBe(5);
    expect(bedrockBurndown('us.anthropic.claude-opus-4-1-20250805-v1:0')).toBe(5);
    expect(bedrockBurndown('anthropic.claude-3-7-sonnet-20250219-v1:0')).toBe(5);
    expect(bedrockBurndown('global.anthropic.claude-sonnet-5-v1:0')).toBe(5);
    expect(bedrockBurndown('anthropic.claude-3-haiku-20240307-v1:0')).toBe(1);
    expect(bedrockBurndown('amazon.nova-pro-v1:0')).toBe(1);
  });
});
