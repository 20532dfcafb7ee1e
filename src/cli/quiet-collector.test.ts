import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../contracts/manual-clock.js';
import { createEngine, type FanoutEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { QUIET_MS, releaseWhenQuiet } from './quiet-collector.js';

let engine: FanoutEngine;
afterEach(() => engine.close());

describe('releaseWhenQuiet', () => {
  it('gives memory back once, 10 s after the last work ended, and not again until there is more work', async () => {
    const clock = new ManualClock(0);
    engine = createEngine({
      clock,
      cache: false,
      providers: [new MockProvider({ models: { m: { latency: 30_000 } } })],
    });
    const released: number[] = [];
    const stop = releaseWhenQuiet(engine, () => released.push(clock.now()));
    // Nothing ran yet: a process that never worked has nothing to give back.
    await clock.advance(60_000);
    expect(released).toEqual([]);
    // A call of 30 s from 60 s: the engine is busy until 90 s, when a look (every 5 s) finds it quiet; released 10 s later.
    const handle = engine.submit({ model: 'mock:m', messages: [{ role: 'user', content: 'work' }] });
    await clock.advance(30_000);
    await handle.result();
    await clock.advance(QUIET_MS - 1);
    expect(released).toEqual([]);
    await clock.advance(1);
    expect(released).toEqual([100_000]);
    await clock.advance(120_000);
    expect(released).toEqual([100_000]);
    stop();
  });
});
