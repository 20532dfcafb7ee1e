import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../core/events.js';
import type { TaskStatus } from '../../core/task.js';
import { HISTORY_SECONDS, LATENCY_SAMPLES, MAX_SERIES, RECENT_TASKS, TenantActivity } from './activity.js';

const base = { key: 'mock:m' };

function status(id: string, fields: Partial<TaskStatus> = {}): TaskStatus {
  return {
    id,
    model: 'mock:m',
    tenant: 't',
    key: 'mock:m',
    priority: 0,
    state: 'completed',
    submittedAt: 0,
    attempts: [{ attempt: 1, startedAt: 0, endedAt: 1, outcome: 'completed' }],
    usage: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 },
    timing: { queuedMs: 100, rateLimitedMs: 200, providerMs: 300, totalMs: 600 },
    ...fields,
  };
}

/** One task's life: queued, held by a limit, started, completed. */
function lifeOf(activity: TenantActivity, id: string, at: number, label?: string): void {
  const common = { ...base, taskId: id, ...(label ? { label } : {}) };
  activity.record({ ...common, type: 'task-queued', at, state: 'queued' });
  activity.record({
    ...common,
    type: 'task-rate-limited',
    at: at + 100,
    state: 'rate_limited',
    eta: at + 300,
    reason: 'tokensPerMinute',
  });
  activity.record({ ...common, type: 'task-started', at: at + 300, state: 'processing', attempt: 1 });
  activity.record(
    { ...common, type: 'task-completed', at: at + 600, state: 'completed', result: {} as never },
    status(id),
  );
}

describe('TenantActivity', () => {
  it('counts each second, splits the time of ended calls, and lists tasks newest first', () => {
    const activity = new TenantActivity();
    // A batch line's label is its custom id: no step.
    lifeOf(activity, 'line', 9_000, 'line-7');
    lifeOf(activity, 'a', 10_000);
    lifeOf(activity, 'run_1:review[2]:mock:m', 10_500, 'review[2]');
    activity.record({
      ...base,
      taskId: 'c',
      type: 'attempt-failed',
      at: 11_200,
      state: 'rate_limited',
      attempt: 1,
      error: { code: 'rate_limited', message: '429', status: 429 },
    });
    activity.record({
      ...base,
      taskId: 'c',
      type: 'task-retrying',
      at: 11_200,
      state: 'rate_limited',
      attempt: 1,
      eta: 12_000,
      waitMs: 800,
      reason: 'retry-after',
    });
    const figures = activity.figures(11_999);
    expect(figures.seconds).toHaveLength(HISTORY_SECONDS);
    expect(figures.seconds.at(-1)).toEqual({
      second: 11,
      completed: 1,
      failed: 0,
      tokens: 15,
      refused429: 1,
      retries: 1,
      queuedMs: 100,
      rateLimitedMs: 200,
      providerMs: 300,
    });
    expect(figures.seconds.at(-2)).toMatchObject({ second: 10, completed: 1, tokens: 15 });
    expect(figures.seconds.at(-3)).toMatchObject({ second: 9, completed: 1, tokens: 15 });
    expect(figures.seconds[0]).toMatchObject({ second: 11 - HISTORY_SECONDS + 1, completed: 0 });
    expect(figures.tasks.map((t) => [t.id, t.state, t.label, t.startedAt, t.endedAt])).toEqual([
      ['c', 'rate_limited', undefined, undefined, undefined],
      ['run_1:review[2]:mock:m', 'completed', 'review[2]', 10_800, 11_100],
      ['a', 'completed', undefined, 10_300, 10_600],
      ['line', 'completed', 'line-7', 9_300, 9_600],
    ]);
    expect(figures.tasks[1]).toMatchObject({ attempts: 1, inputTokens: 10, outputTokens: 5, providerMs: 300 });
    expect(figures.waiting).toEqual({
      'mock:m': { count: 1, next: [{ id: 'c', eta: 12_000, reason: 'retry-after' }] },
    });
    expect(figures.latency.model).toEqual([{ name: 'mock:m', count: 3, p50: 300, p90: 300, p99: 300 }]);
    // A step's latency is its call's submission to end, under the step's name without the item.
    expect(figures.latency.step).toEqual([{ name: 'review', count: 1, p50: 600, p90: 600, p99: 600 }]);
  });

  it('forgets seconds and samples older than five minutes', () => {
    const activity = new TenantActivity();
    lifeOf(activity, 'old', 0);
    activity.recordTool('search', 40, 1000);
    const later = activity.figures(HISTORY_SECONDS * 1000 + 5000);
    expect(later.seconds.every((slot) => slot.completed === 0)).toBe(true);
    expect(later.latency).toEqual({ model: [], step: [], tool: [] });
    expect(activity.figures(2000).latency.tool).toEqual([{ name: 'search', count: 1, p50: 40, p90: 40, p99: 40 }]);
  });

  it('keeps its bounds: recent tasks, samples per series, and series per kind', () => {
    const activity = new TenantActivity();
    for (let i = 0; i < RECENT_TASKS + 5; i++)
      activity.record({ ...base, taskId: `t${i}`, type: 'task-queued', at: 1000, state: 'queued' } as EngineEvent);
    const tasks = activity.figures(1000).tasks;
    expect(tasks).toHaveLength(RECENT_TASKS);
    expect(tasks.at(-1)?.id).toBe('t5');
    for (let i = 0; i < LATENCY_SAMPLES + 10; i++) activity.recordTool('one', i, 1000);
    for (let i = 0; i < MAX_SERIES + 3; i++) activity.recordTool(`tool${i}`, 7, 1000);
    const tools = activity.figures(1000).latency.tool;
    expect(tools.find((t) => t.name === 'one')).toMatchObject({ count: LATENCY_SAMPLES, p50: 259 });
    expect(tools).toHaveLength(MAX_SERIES + 1);
    expect(tools.find((t) => t.name === '(other)')).toMatchObject({ count: 4 });
  });
});
