import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { ManualClock } from '../contracts/manual-clock.js';
import { runBatch, type BatchSummary } from './run-batch.js';

/** 600 requests a minute with a one-second burst (10 calls), every call 500 ms: a new call each 100 ms once the burst is spent. */
function setup() {
  const clock = new ManualClock();
  const mock = new MockProvider({ models: { m: { latency: 500 } } });
  const engine = createEngine({
    clock,
    providers: [mock],
    cache: false,
    models: { 'mock:m': { limits: { requestsPerMinute: 600, burstSeconds: 1, transitMs: 0 } } },
  });
  return { clock, engine };
}

async function* linesOf(count: number, prefix: string): AsyncIterable<string> {
  for (let i = 0; i < count; i++)
    yield JSON.stringify({ id: `${prefix}${i}`, model: 'mock:m', prompt: `${prefix} ${i}` });
}

describe('the figures of a batch', () => {
  it('counts the calls a stop left in flight, so the bound of an interrupted run stays within its wall time', async () => {
    const { clock, engine } = setup();
    const controller = new AbortController();
    const written: string[] = [];
    const run = runBatch({
      engine,
      lines: linesOf(100, 'a'),
      write: (text) => void written.push(text),
      signal: controller.signal,
    });
    await clock.advanceTo(3_000);
    controller.abort();
    const summary = await run;
    // 10 at 0 ms, then one each 100 ms up to 3,000 ms: 40 calls, 35 of them answered (those sent by 2,500 ms).
    expect([summary.completed, summary.attempts, summary.written, summary.wallMs]).toEqual([35, 40, 35, 3_000]);
    // The last call was sent at 3,000 ms and had not had time to answer: the bound is 30 calls past the burst × 100 ms, no more.
    expect(summary.lowerBound).toEqual({ ms: 3_000, bindingOn: 'mock:m requestsPerMinute' });
    expect(summary.utilisation).toBe(1);
    await engine.close();
  });

  it('counts only its own calls when the engine ran another batch before it', async () => {
    const { clock, engine } = setup();
    const first = runBatch({ engine, lines: linesOf(20, 'a'), write: () => undefined });
    await clock.runAll();
    await first;
    expect(clock.now()).toBe(1_500);
    const second = runBatch({ engine, lines: linesOf(20, 'b'), write: () => undefined });
    await clock.runAll();
    const summary: BatchSummary = await second;
    // At 1,500 ms the bucket holds 5 calls (refilled since the first batch spent it at 1,000 ms): 5 at once, then one each 100 ms, the last sent at 3,000 ms.
    expect([summary.completed, summary.attempts, summary.wallMs]).toEqual([20, 20, 2_000]);
    // Its bound assumes a full bucket (10) at its start and counts its own 20 calls: (20 − 10) × 100 ms + 500 ms.
    expect(summary.lowerBound).toEqual({ ms: 1_500, bindingOn: 'mock:m requestsPerMinute' });
    expect(summary.utilisation).toBe(0.75);
    await engine.close();
  });
});
