import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { ManualClock } from '../contracts/manual-clock.js';
import { engineMetrics } from './prometheus.js';

const ask = (content: string) => ({ model: 'mock:m', messages: [{ role: 'user' as const, content }] });

/** Each sample of one metric as `labels → value`. */
async function samples(metrics: ReturnType<typeof engineMetrics>, name: string): Promise<Record<string, number>> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const out: Record<string, number> = {};
  for (const value of (await metric.get()).values) out[JSON.stringify(value.labels)] = value.value;
  return out;
}

describe('Prometheus metrics', () => {
  it('report tasks by state and how full each limit bucket is, at the scrape', async () => {
    const clock = new ManualClock();
    const engine = createEngine({
      clock,
      cache: false,
      providers: [new MockProvider({ defaults: { latency: 1000 } })],
      // 60 requests a minute, 10 seconds' worth at once: a bucket of 10, one back each second.
      models: { 'mock:m': { limits: { requestsPerMinute: 60, burstSeconds: 10, transitMs: 0 } } },
    });
    const metrics = engineMetrics(engine);
    for (let i = 0; i < 12; i++) engine.submit(ask(`q${i}`));
    await clock.advance(0);
    // Ten calls went out; the eleventh waits for the limit; the twelfth waits behind it.
    expect(await samples(metrics, 'fanout_tasks_by_state')).toEqual({
      '{"state":"processing"}': 10,
      '{"state":"rate_limited"}': 1,
      '{"state":"queued"}': 1,
    });
    expect(await samples(metrics, 'fanout_limiter_fill_ratio')).toEqual({
      '{"key":"mock:m","limit":"requestsPerMinute"}': 0,
    });
    await clock.runAll();
    // The last call went out at 2 s and ended at 3 s: the bucket has had 3 s of refill and lost 12, from 10.
    expect(clock.now()).toBe(3000);
    expect(await samples(metrics, 'fanout_tasks_by_state')).toEqual({});
    expect(await samples(metrics, 'fanout_limiter_fill_ratio')).toEqual({
      '{"key":"mock:m","limit":"requestsPerMinute"}': 0.1,
    });
  });

  it('time each pipeline step and each tool call, by pipeline and step', async () => {
    const clock = new ManualClock();
    const engine = createEngine({
      clock,
      cache: false,
      providers: [new MockProvider({ defaults: { latency: 2000 } })],
    });
    const metrics = engineMetrics(engine);
    const pending = engine.run(
      {
        name: 'review',
        steps: {
          draft: { model: 'mock:m', prompt: 'draft' },
          lint: { tool: 'lint', args: { text: '{{ steps.draft.output }}' }, expectedMs: 1500 },
        },
      },
      {},
      { simulateTools: true },
    );
    await clock.runAll();
    metrics.observeRun(await pending);
    const text = await metrics.registry.getSingleMetricAsString('fanout_step_duration_seconds');
    expect(text).toMatch(/^fanout_step_duration_seconds_sum\{pipeline="review",step="draft",state="completed"\} 2$/m);
    expect(text).toMatch(/^fanout_step_duration_seconds_sum\{pipeline="review",step="lint",state="completed"\} 1\.5$/m);
    const tools = await metrics.registry.getSingleMetricAsString('fanout_tool_duration_seconds');
    expect(tools).toMatch(/^fanout_tool_duration_seconds_count\{pipeline="review",step="lint"\} 1$/m);
    expect(tools).toMatch(/^fanout_tool_duration_seconds_bucket\{le="1",pipeline="review",step="lint"\} 0$/m);
    expect(tools).toMatch(/^fanout_tool_duration_seconds_bucket\{le="2\.5",pipeline="review",step="lint"\} 1$/m);
  });
});
