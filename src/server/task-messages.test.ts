import { describe, expect, it } from 'vitest';
import { taskMessage } from './task-messages.js';

const base = { at: 5, taskId: 't1', key: 'mock:m' };

describe('a task event as SSE and the WebSocket send it', () => {
  it('is a delta with its text, or a state with what the event knows', () => {
    expect(taskMessage({ ...base, type: 'task-delta', state: 'processing', attempt: 2, delta: 'Hel' })).toEqual({
      type: 'delta',
      task: 't1',
      text: 'Hel',
      at: 5,
    });
    expect(taskMessage({ ...base, type: 'task-queued', state: 'queued' })).toEqual({
      type: 'state',
      task: 't1',
      state: 'queued',
      at: 5,
    });
    expect(
      taskMessage({
        ...base,
        type: 'task-retrying',
        state: 'rate_limited',
        attempt: 1,
        eta: 900,
        waitMs: 895,
        reason: 'retry',
      }),
    ).toEqual({ type: 'state', task: 't1', state: 'rate_limited', at: 5, attempt: 1, eta: 900 });
    expect(
      taskMessage({
        ...base,
        type: 'attempt-failed',
        state: 'processing',
        attempt: 1,
        error: { code: 'server_error', message: '500' },
      }),
    ).toEqual({
      type: 'state',
      task: 't1',
      state: 'processing',
      at: 5,
      attempt: 1,
      error: { code: 'server_error', message: '500' },
    });
  });
});
