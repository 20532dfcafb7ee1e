import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/contracts/manual-clock.js';
import type { CallContext, ModelCall, Provider } from '../src/contracts/provider.js';
import type { ModelResult } from '../src/contracts/types.js';
import { createEngine } from '../src/create-engine.js';
import { MemoryLimiter } from '../src/limits/limiter.js';

/** An upstream that keeps the calls it was sent. */
class Upstream implements Provider {
  readonly name = 'anthropic';
  readonly sent: ModelCall[] = [];
  accounting() {
    return { rule: 'anthropic' as const };
  }
  countInputTokens(): number {
    return 10;
  }
  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    this.sent.push(call);
    await context.clock.sleep(1_000, context.signal);
    const usage = { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 };
    return { text: 'ok', usage, finishReason: 'stop', model: call.model };
  }
  stream(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

describe('the output ceiling of a request that names none', () => {
  it('is its model’s maxOutputTokens, else the engine’s defaultMaxTokens: reserved, and sent as a default', async () => {
    const clock = new ManualClock();
    const limiter = new MemoryLimiter();
    const upstream = new Upstream();
    const limits = { outputTokensPerMinute: 60_000, burstSeconds: 60, transitMs: 0 };
    const engine = createEngine({
      clock,
      limiter,
      providers: [upstream],
      cache: false,
      defaultMaxTokens: 700,
      models: { 'anthropic:long': { limits, maxOutputTokens: 16_000 }, 'anthropic:short': { limits } },
    });
    const reserved = async (model: string, maxTokens?: number) => {
      const handle = engine.submit({ model, messages: [{ role: 'user', content: 'hi' }], maxTokens });
      await clock.advance(0);
      const level = limiter.levels(model, clock.now()).find((l) => l.name === 'outputTokensPerMinute');
      const charged = 60_000 - (level?.remaining ?? 0);
      await clock.advance(1_000);
      await handle.result();
      await clock.advance(60_000);
      return charged;
    };
    expect(await reserved('anthropic:long')).toBe(16_000);
    expect(await reserved('anthropic:short')).toBe(700);
    expect(await reserved('anthropic:long', 50)).toBe(50);
    expect(upstream.sent.map((c) => [c.maxTokens, c.maxTokensDefaulted])).toEqual([
      [16_000, true],
      [700, true],
      [50, false],
    ]);
    await engine.close();
  });
});
