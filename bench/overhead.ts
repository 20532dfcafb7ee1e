import { createEngine, MockProvider, SystemClock } from '../dist/index.js';
import { percentiles } from '../dist/metrics/percentiles.js';
import { median, nowMs } from './stats.js';

/**
 * O-call: latency an engine call adds over calling the same mock directly,
 * one call in flight. Rounds of fanout and direct calls alternate so both see
 * the same machine state; each repeat takes p50 and p99 of both and reports
 * the difference; the table shows the median over repeats.
 */
export interface OverheadResult {
  directP50Us: number;
  directP99Us: number;
  fanoutP50Us: number;
  fanoutP99Us: number;
  addedP50Us: number;
  addedP99Us: number;
  samples: number;
}

export async function benchOverhead(samples = 6000, repeats = 3): Promise<OverheadResult> {
  const clock = new SystemClock();
  const signal = new AbortController().signal;
  const runs: OverheadResult[] = [];
  for (let r = 0; r < repeats; r++) {
    const mock = new MockProvider();
    const engine = createEngine({
      providers: [mock],
      models: { 'mock:bench': { limits: { requestsPerMinute: 1e12 } } },
    });
    const direct: number[] = [];
    const viaEngine: number[] = [];
    const round = 500;
    for (let done = 0; done < samples; done += round) {
      for (let i = 0; i < round; i++) {
        const content = `prompt ${done + i}`;
        const t0 = nowMs();
        await mock.complete(
          { model: 'bench', messages: [{ role: 'user', content }], maxTokens: 64 },
          { signal, attempt: 1, clock },
        );
        direct.push(nowMs() - t0);
      }
      for (let i = 0; i < round; i++) {
        const content = `prompt ${done + i}`;
        const t0 = nowMs();
        await engine.submit({ model: 'mock:bench', messages: [{ role: 'user', content }], maxTokens: 64 }).result();
        viaEngine.push(nowMs() - t0);
      }
    }
    await engine.close();
    const [d50, d99] = percentiles(direct, [50, 99]) as [number, number];
    const [f50, f99] = percentiles(viaEngine, [50, 99]) as [number, number];
    runs.push({
      directP50Us: d50 * 1000,
      directP99Us: d99 * 1000,
      fanoutP50Us: f50 * 1000,
      fanoutP99Us: f99 * 1000,
      addedP50Us: (f50 - d50) * 1000,
      addedP99Us: (f99 - d99) * 1000,
      samples,
    });
  }
  const pick = (k: keyof OverheadResult) => median(runs.map((r) => r[k]));
  return {
    directP50Us: pick('directP50Us'),
    directP99Us: pick('directP99Us'),
    fanoutP50Us: pick('fanoutP50Us'),
    fanoutP99Us: pick('fanoutP99Us'),
    addedP50Us: pick('addedP50Us'),
    addedP99Us: pick('addedP99Us'),
    samples,
  };
}
