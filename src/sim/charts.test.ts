import { describe, expect, it } from 'vitest';
import type { PipelineRun } from '../pipeline/run.js';
import { renderMermaid, renderSvg, seconds } from './charts.js';

const run = (wallMs: number): PipelineRun => ({
  pipeline: 'review',
  ok: true,
  startedAt: 1000,
  endedAt: 1000 + wallMs,
  wallMs,
  steps: {},
  calls: [
    {
      taskId: 't1',
      step: 'a',
      model: 'mock:m',
      state: 'completed',
      submittedAt: 1000,
      startedAt: 1000.25,
      endedAt: 1000 + wallMs,
      queuedMs: 0.25,
      rateLimitedMs: 0,
      providerMs: wallMs - 0.25,
      attempts: 1,
    },
  ],
  tools: [],
  usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
  costUsd: 0,
  unpricedModels: [],
});

describe('chart times', () => {
  it('are written as people read seconds, however fractional the run’s real times', () => {
    expect([seconds(45_000), seconds(15_008.715576171875), seconds(1234.5), seconds(80)]).toEqual([
      '45 s',
      '15.0 s',
      '1.23 s',
      '0.08 s',
    ]);
    expect(renderMermaid(run(15_008.715576171875))).toContain('    title review: 15.0 s\n');
    expect(renderSvg(run(15_008.715576171875))).not.toMatch(/\d\.\d{4,} s/);
  });
});
