import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/contracts/manual-clock.js';
import type { CallContext, ModelCall, Provider } from '../src/contracts/provider.js';
import type { ModelResult } from '../src/contracts/types.js';
import { createEngine } from '../src/create-engine.js';
import { estimateInputTokens, estimateTextTokens, InputCalibration } from '../src/limits/estimate.js';
import { MemoryLimiter } from '../src/limits/limiter.js';

/** A 3,000-character prompt, and what an Anthropic-style upstream counts it as. */
const PROMPT = 'Review the retry path of the scheduler and say what breaks under load. '.repeat(42).slice(0, 3_000);
const COUNTED = 750;

/** An upstream whose tokenizer counts every prompt as `COUNTED` input tokens, answering after 1 s. */
class CountingUpstream implements Provider {
  readonly name = 'anthropic';
  calls = 0;
  accounting() {
    return { rule: 'anthropic' as const };
  }
  async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
    this.calls += 1;
    await context.clock.sleep(1_000, context.signal);
    return {
      text: 'ok',
      usage: { inputTokens: COUNTED - 100, outputTokens: 10, cacheReadTokens: 100, cacheWriteTokens: 0 },
      finishReason: 'stop',
      model: call.model,
    };
  }
  stream(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

describe('input estimates, calibrated per model by what its provider counted', () => {
  it('charges a model’s later calls as its provider counts them, from its first answer on', async () => {
    const clock = new ManualClock();
    const limiter = new MemoryLimiter();
    const engine = createEngine({
      clock,
      limiter,
      providers: [new CountingUpstream()],
      cache: false,
      models: { 'anthropic:m': { limits: { inputTokensPerMinute: 60_000, burstSeconds: 60, transitMs: 0 } } },
    });
    const ask = { model: 'anthropic:m', messages: [{ role: 'user' as const, content: PROMPT }], maxTokens: 50 };
    const estimate = estimateInputTokens(ask);
    // The estimate alone under-reserves this upstream, as a tokenizer of another vendor would.
    expect(estimate).toBeLessThan(COUNTED);
    const inputLeft = () => limiter.levels('anthropic:m', clock.now()).find((l) => l.name === 'inputTokensPerMinute');

    const charged = async (request: typeof ask) => {
      const before = inputLeft()?.remaining ?? 60_000; // a key is made on its first call, full
      const handle = engine.submit(request);
      await clock.advance(0);
      const charge = before - (inputLeft()?.remaining ?? 0);
      await clock.advance(1_000);
      await handle.result();
      return charge;
    };
    expect(await charged(ask)).toBe(estimate);
    // From the first answer on, a call is charged as the provider counts it (cache reads included: the estimate is of the whole prompt).
    expect(await charged({ ...ask, messages: [{ role: 'user', content: PROMPT.replace('Review', 'Revise') }] })).toBe(
      COUNTED,
    );
    await engine.close();
  });

  it('averages its first ten calls, then follows the newest with a tenth of each', () => {
    const calibration = new InputCalibration();
    expect(calibration.apply(600)).toBe(600);
    calibration.observe(600, 750);
    expect(calibration.ratio).toBe(1.25);
    expect(calibration.apply(600)).toBe(750);
    calibration.observe(600, 600);
    expect(calibration.ratio).toBe(1.125);
    for (let i = 0; i < 8; i++) calibration.observe(1_000, 1_125);
    expect(calibration.ratio).toBeCloseTo(1.125, 12);
    calibration.observe(1_000, 2_125);
    expect(calibration.ratio).toBeCloseTo(1.125 + 1 / 10, 12);
    // Too small to say much, or too far off to be the same model: ignored.
    calibration.observe(20, 80);
    calibration.observe(1_000, 9_000);
    expect(calibration.ratio).toBeCloseTo(1.225, 12);
  });

  it('estimates text by its pieces, without a tokenizer', () => {
    expect(estimateTextTokens('hello world')).toBe(2);
    expect(estimateTextTokens('internationalisation')).toBe(3);
    expect(estimateTextTokens('x = 12345;\n')).toBe(1 + 1 + 1 + 2 + 1 + 1);
    expect(estimateTextTokens('日本語のテキスト')).toBe(5);
    expect(estimateInputTokens({ system: 'hello world', messages: [{ role: 'user', content: 'hello world' }] })).toBe(
      3 + (4 + 2) + (4 + 2),
    );
  });
});
