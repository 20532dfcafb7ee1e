import { describe, expect, it } from 'vitest';
import {
  batchProgress,
  bucketFill,
  concurrencyFill,
  callsOfRun,
  chartData,
  criticalPath,
  filterTasks,
  formatCount,
  formatMs,
  ganttOf,
  rates,
  sequentialOf,
  timeSplit,
  type Seconds,
} from './shape.js';

/** A fan-out run: a plan call, three reviewers in parallel (one held by a limit), then a summary. */
const run = [
  {
    taskId: 'r:plan',
    step: 'plan',
    model: 'mock:a',
    submittedAt: 1000,
    startedAt: 1000,
    endedAt: 1200,
    rateLimitedMs: 0,
  },
  { taskId: 'r:review:0', step: 'review', item: 0, model: 'mock:b', submittedAt: 1200, startedAt: 1200, endedAt: 1500 },
  { taskId: 'r:review:1', step: 'review', item: 1, model: 'mock:b', submittedAt: 1200, startedAt: 1250, endedAt: 1450 },
  // Waited 300 ms: 100 for its turn, then 200 for a rate limit.
  {
    taskId: 'r:review:2',
    step: 'review',
    item: 2,
    model: 'mock:b',
    submittedAt: 1200,
    startedAt: 1500,
    endedAt: 1700,
    rateLimitedMs: 200,
  },
  { taskId: 'r:sum', step: 'summary', model: 'mock:a', submittedAt: 1700, startedAt: 1700, endedAt: 1800 },
];

describe('ganttOf', () => {
  it('lays calls on one axis from the first submission, splits each wait, and marks the critical path', () => {
    const gantt = ganttOf(run, [], 99_999);
    expect(gantt.wallMs).toBe(800);
    expect(gantt.bars.map((b) => [b.label, b.submitted, b.started, b.ended, b.rateLimitedMs, b.critical])).toEqual([
      ['plan mock:a', 0, 0, 200, 0, true],
      ['review[0] mock:b', 200, 200, 500, 0, false],
      ['review[1] mock:b', 200, 250, 450, 0, false],
      ['review[2] mock:b', 200, 500, 700, 200, true],
      ['summary mock:a', 700, 700, 800, 0, true],
    ]);
  });

  it('ends a call still going at now, and puts tools on the same axis', () => {
    const gantt = ganttOf(
      [{ id: 'r:x', label: 'x', model: 'mock:a', submittedAt: 5000, startedAt: 5100 }],
      [{ step: 'fetch', tool: 'http', startedAt: 4000, endedAt: 4500 }],
      6000,
    );
    expect(gantt.bars).toEqual([
      { label: 'fetch (http)', submitted: 0, started: 0, ended: 500, rateLimitedMs: 0, open: false, critical: true },
      { label: 'x mock:a', submitted: 1000, started: 1100, ended: 2000, rateLimitedMs: 0, open: true, critical: true },
    ]);
    expect(gantt.wallMs).toBe(2000);
  });

  it('is empty for no calls', () => {
    expect(ganttOf([], [], 0)).toEqual({ bars: [], wallMs: 0 });
  });
});

describe('criticalPath', () => {
  it('never takes a bar submitted with the one it waits for, even an instant one', () => {
    expect(
      criticalPath([
        { submitted: 0, ended: 0 },
        { submitted: 0, ended: 100 },
      ]),
    ).toEqual([1]);
  });
});

describe('sequentialOf', () => {
  it('lays each call’s own time end to end, waits left out: the one-after-another picture', () => {
    const sequential = sequentialOf(ganttOf(run, [], 0));
    expect(sequential.bars.map((b) => [b.started, b.ended])).toEqual([
      [0, 200],
      [200, 500],
      [500, 700],
      [700, 900],
      [900, 1000],
    ]);
    expect(sequential.wallMs).toBe(1000);
    expect(sequential.bars.every((b) => !b.critical && b.rateLimitedMs === 0)).toBe(true);
  });
});

describe('bucketFill', () => {
  it('gives the share in use and the bucket in words', () => {
    const fill = bucketFill({
      name: 'tokensPerMinute',
      limit: 60_000,
      windowMs: 60_000,
      capacity: 1000,
      remaining: 250.6,
      resetMs: 750,
    });
    expect(fill.used).toBeCloseTo(0.7494, 12);
    expect(fill.title).toBe('tokens / min');
    expect(fill.detail).toBe('250 of 1,000 left · limit 60,000 per 1 min · full in 750 ms');
  });

  it('stays within 0 and 1 when a bucket is in debt', () => {
    const fill = bucketFill({
      name: 'requestsPerMinute',
      limit: 10,
      windowMs: 60_000,
      capacity: 10,
      remaining: -3,
      resetMs: 78_000,
    });
    expect(fill.used).toBe(1);
    expect(fill.detail).toBe('0 of 10 left · limit 10 per 1 min · full in 1 min 18 s');
  });
});

describe('concurrencyFill', () => {
  it('draws calls in flight against the limit like a bucket', () => {
    expect(concurrencyFill(3, 4)).toEqual({ used: 0.75, title: 'calls in flight', detail: '3 of 4 at once' });
    expect(concurrencyFill(0, 0).used).toBe(0);
  });
});

const seconds: Seconds = {
  start: 100,
  completed: [0, 2, 4, 6, 1],
  failed: [0, 0, 0, 0, 0],
  tokens: [0, 20, 40, 60, 10],
  refused429: [0, 1, 0, 0, 0],
  retries: [0, 1, 0, 0, 0],
  queuedMs: [0, 100, 0, 0, 0],
  rateLimitedMs: [0, 300, 0, 0, 0],
  providerMs: [0, 400, 100, 100, 0],
};

describe('per-second figures', () => {
  it('are charted with x in epoch seconds', () => {
    expect(chartData(seconds, ['completed', 'refused429'])).toEqual([
      [100, 101, 102, 103, 104],
      [0, 2, 4, 6, 1],
      [0, 1, 0, 0, 0],
    ]);
  });

  it('give rates over the last whole seconds, the current one left out', () => {
    expect(rates(seconds, 2)).toEqual({ completions: 5, tokens: 50 });
    expect(rates(seconds)).toEqual({ completions: 3, tokens: 30 });
  });

  it('split the time of ended calls into queued, rate-limited and provider shares', () => {
    expect(timeSplit(seconds)).toEqual({ queued: 0.1, rateLimited: 0.3, provider: 0.6, totalMs: 1000 });
    expect(timeSplit({ ...seconds, queuedMs: [0], rateLimitedMs: [0], providerMs: [0] }).totalMs).toBe(0);
  });
});

describe('tasks and batches', () => {
  const tasks = [
    { id: 'run_1:plan:mock:a', model: 'mock:a', state: 'completed', label: 'plan' },
    { id: 't_2', model: 'mock:b', state: 'rate_limited' },
    { id: 'run_10:plan:mock:a', model: 'mock:a', state: 'processing', label: 'plan' },
  ];

  it('filter by state, model and part of the id or step', () => {
    expect(filterTasks(tasks, { state: 'rate_limited' }).map((t) => t.id)).toEqual(['t_2']);
    expect(filterTasks(tasks, { model: 'mock:a', text: 'PLAN' }).map((t) => t.id)).toEqual([
      'run_1:plan:mock:a',
      'run_10:plan:mock:a',
    ]);
    expect(filterTasks(tasks, {})).toHaveLength(3);
  });

  it('find a run’s calls by their id prefix, not another run whose id starts the same', () => {
    expect(callsOfRun(tasks, 'run_1').map((t) => t.id)).toEqual(['run_1:plan:mock:a']);
  });

  it('count a batch’s ended lines, invalid ones included', () => {
    expect(batchProgress({ lines: 10, counts: { completed: 5, failed: 1, invalid: 1, queued: 3 } })).toEqual({
      done: 7,
      fraction: 0.7,
    });
    expect(batchProgress({ lines: 0, counts: {} })).toEqual({ done: 0, fraction: 0 });
  });
});

describe('formatting', () => {
  it('writes times and counts for people', () => {
    expect([850, 999.6, 1250, 10_000, 12_500, 200_000, 60_000, 7_200_000].map(formatMs)).toEqual([
      '850 ms',
      '1 s',
      '1.25 s',
      '10 s',
      '12.5 s',
      '3 min 20 s',
      '1 min',
      '2 h',
    ]);
    expect([0, 1234, 250_000, 12_000_000, Infinity].map(formatCount)).toEqual(['0', '1,234', '250k', '12M', '∞']);
  });
});
