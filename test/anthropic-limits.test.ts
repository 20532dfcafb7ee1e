import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/contracts/manual-clock.js';
import { ProviderError } from '../src/contracts/errors.js';
import type { CallContext, ModelCall, Provider } from '../src/contracts/provider.js';
import type { ModelResult } from '../src/contracts/types.js';
import { createEngine } from '../src/create-engine.js';
import { MemoryLimiter } from '../src/limits/limiter.js';
import { anthropicRateLimits } from '../src/providers/rate-limit-headers.js';

/** Tier 1 Sonnet: 50 requests, 30,000 input and 8,000 output tokens a minute, each bucket holding 10 s of its rate. */
const LIMITS = { requestsPerMinute: 50, inputTokensPerMinute: 30_000, outputTokensPerMinute: 8_000, burstSeconds: 10 };
const CALLS = 60;
const INPUT = 750;
const MAX_TOKENS = 300;
const OUTPUT = 60;
const CALL_MS = 1_000;

/**
 * An upstream that keeps Anthropic's limits as Anthropic does (output charged
 * at max_tokens and refunded to what was written) and answers with its
 * headers: requests, input and output tokens, and `tokens-*`, the tightest
 * token limit in force (here the output one).
 */
class AnthropicUpstream implements Provider {
  readonly name = 'anthropic';
  readonly limits = new MemoryLimiter();
  http429 = 0;

  constructor(clock: ManualClock) {
    this.limits.define('m', { ...LIMITS, transitMs: 0 }, clock.now());
  }

  reportsLimits(): boolean {
    return true;
  }

  accounting() {
    return { rule: 'anthropic' as const };
  }

  countInputTokens(): number {
    return INPUT;
  }

  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    const reserved = { requests: 1, tokens: 0, inputTokens: INPUT, outputTokens: call.maxTokens };
    const permit = this.limits.reserve('m', reserved, context.clock.now());
    if (!permit.granted) {
      this.http429 += 1;
      throw new ProviderError('rate_limited', 'rate_limit_error', {
        provider: 'anthropic',
        status: 429,
        retryable: true,
        retryAfterMs: Math.ceil(permit.waitMs / 1000) * 1000,
      });
    }
    await context.clock.sleep(CALL_MS);
    const now = context.clock.now();
    this.limits.settle(permit, now, { ...reserved, outputTokens: OUTPUT });
    return {
      text: 'ok',
      usage: { inputTokens: INPUT, outputTokens: OUTPUT, cacheReadTokens: 0, cacheWriteTokens: 0 },
      finishReason: 'stop',
      model: call.model,
      rateLimit: anthropicRateLimits(this.headers(now), now),
    };
  }

  stream(): AsyncIterable<never> {
    throw new Error('not used');
  }

  private headers(now: number): Headers {
    const headers = new Headers();
    const names = {
      requestsPerMinute: 'requests',
      inputTokensPerMinute: 'input-tokens',
      outputTokensPerMinute: 'output-tokens',
    };
    for (const level of this.limits.levels('m', now)) {
      const kind = names[level.name as keyof typeof names];
      if (!kind) continue;
      const set = (k: string) => {
        headers.set(`anthropic-ratelimit-${k}-limit`, String(level.limit));
        headers.set(`anthropic-ratelimit-${k}-remaining`, String(Math.floor(level.remaining)));
        headers.set(`anthropic-ratelimit-${k}-reset`, new Date(now + level.resetMs).toISOString());
      };
      set(kind);
      if (kind === 'output-tokens') set('tokens');
    }
    return headers;
  }
}

async function run(told: boolean): Promise<{ ms: number; http429: number }> {
  const clock = new ManualClock();
  const upstream = new AnthropicUpstream(clock);
  const engine = createEngine({
    clock,
    providers: [upstream],
    cache: false,
    models: told ? { 'anthropic:m': { limits: LIMITS } } : {},
  });
  const requests = Array.from({ length: CALLS }, (_, i) => ({
    model: 'anthropic:m',
    messages: [{ role: 'user' as const, content: `review part ${i}` }],
    maxTokens: MAX_TOKENS,
  }));
  const done = engine.gather(requests);
  await clock.runAll();
  const outcomes = await done;
  await engine.close();
  expect(outcomes.every((o) => o.ok)).toBe(true);
  return { ms: clock.now(), http429: upstream.http429 };
}

/**
 * What the limits allow: input binds. The bucket holds 5,000 input tokens
 * (10 s of 30,000 a minute); 60 calls need 45,000, so the last may start once
 * 40,000 have refilled, at 80 s, and ends a call later.
 */
const LOWER_BOUND_MS = 80_000 + CALL_MS;

describe("Anthropic's limits, told and learned from its headers", () => {
  it('reads tokens-* as a summary of the input and output limits, never a third bucket', () => {
    const headers = new Headers({
      'anthropic-ratelimit-tokens-limit': '8000',
      'anthropic-ratelimit-tokens-remaining': '7000',
      'anthropic-ratelimit-input-tokens-limit': '30000',
      'anthropic-ratelimit-input-tokens-remaining': '29000',
      'anthropic-ratelimit-output-tokens-limit': '8000',
      'anthropic-ratelimit-output-tokens-remaining': '7000',
    });
    const info = anthropicRateLimits(headers, 0);
    expect(info).toMatchObject({ inputTokensLimit: 30_000, outputTokensLimit: 8_000 });
    expect(info.tokensLimit).toBeUndefined();
    // A workspace that reports only the summary: then it is the token limit in force.
    const summaryOnly = new Headers({ 'anthropic-ratelimit-tokens-limit': '8000' });
    expect(anthropicRateLimits(summaryOnly, 0).tokensLimit).toBe(8_000);
  });

  it('runs 60 calls at ≥ 95 % of what the limits allow when told them, with no 429', async () => {
    const { ms, http429 } = await run(true);
    expect(http429).toBe(0);
    // 100 ms over the bound: the engine's transit guard on told limits.
    expect(ms).toBe(81_100);
    expect(LOWER_BOUND_MS / ms).toBeGreaterThanOrEqual(0.95);
  });

  it('runs them at ≥ 90 % when it learns the limits from the headers alone, with no 429', async () => {
    const { ms, http429 } = await run(false);
    expect(http429).toBe(0);
    expect(ms).toBe(81_000);
    expect(LOWER_BOUND_MS / ms).toBeGreaterThanOrEqual(0.9);
  });
});
