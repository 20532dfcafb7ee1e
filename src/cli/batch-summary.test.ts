import { describe, expect, it } from 'vitest';
import type { BatchSummary } from '../batch/run-batch.js';
import { renderSummary } from './batch-command.js';

const summary = (extra: Partial<BatchSummary>): BatchSummary => ({
  lines: 10,
  completed: 10,
  failed: 0,
  invalid: 0,
  cancelled: 0,
  cacheHits: 0,
  interrupted: false,
  resumed: { written: 0, stored: 0, running: 0 },
  written: 10,
  errorsByCode: {},
  usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
  attempts: 10,
  retries: 0,
  http429: 0,
  wallMs: 1000,
  latencyMs: {},
  lowerBound: { ms: 900, bindingOn: 'mock:m requestsPerMinute' },
  utilisation: 0.9,
  ...extra,
});
const where = { input: 'in.jsonl', output: 'out.jsonl' };
const boundLines = (s: BatchSummary) =>
  renderSummary(s, where)
    .split('\n')
    .filter((line) => /lower bound|utilisation/.test(line));

describe('the batch summary', () => {
  it('gives a lower bound and utilisation only where they mean something', () => {
    expect(boundLines(summary({}))).toEqual([
      '  lower bound  900 ms (set by mock:m requestsPerMinute)',
      '  utilisation  90.0 % of what these limits allow',
    ]);
    // A resumed run that sent nothing: no 0 µs bound, no 0.0 %.
    expect(
      boundLines(
        summary({
          completed: 0,
          attempts: 0,
          resumed: { written: 10, stored: 0, running: 0 },
          lowerBound: { ms: 0, bindingOn: 'longest call' },
          utilisation: 0,
        }),
      ),
    ).toEqual(['  lower bound  - (this run sent no call)', '  utilisation  -']);
    // No limits: the longest call is the only bound, and a share of it is no measure of the limits.
    expect(boundLines(summary({ lowerBound: { ms: 130, bindingOn: 'longest call' }, utilisation: 0.13 }))).toEqual([
      '  lower bound  130 ms (the longest call: no limit bound this run)',
      '  utilisation  - (no limit bound this run)',
    ]);
  });
});
