import { describe, expect, it } from 'vitest';
import { FanoutError } from '../contracts/errors.js';
import { Task } from './task.js';
import {
  assertTransition,
  isTerminal,
  TASK_STATES,
  transitionAllowed,
  type TaskState,
} from '../contracts/task-state.js';

describe('task states', () => {
  it('allows exactly the documented moves', () => {
    const allowed: Array<[TaskState, TaskState]> = [];
    for (const from of TASK_STATES)
      for (const to of TASK_STATES) if (transitionAllowed(from, to)) allowed.push([from, to]);
    expect(allowed.map(([a, b]) => `${a}→${b}`).sort()).toEqual(
      [
        'submitted→queued',
        'submitted→completed',
        'submitted→failed',
        'submitted→cancelled',
        'queued→processing',
        'queued→rate_limited',
        'queued→completed',
        'queued→failed',
        'queued→cancelled',
        'rate_limited→queued',
        'rate_limited→processing',
        'rate_limited→failed',
        'rate_limited→cancelled',
        'processing→completed',
        'processing→failed',
        'processing→cancelled',
        'processing→rate_limited',
        'processing→queued',
      ].sort(),
    );
  });

  it('never leaves a terminal state', () => {
    for (const end of ['completed', 'failed', 'cancelled'] as const) {
      expect(isTerminal(end)).toBe(true);
      for (const to of TASK_STATES) expect(transitionAllowed(end, to)).toBe(false);
    }
  });

  it('throws on an illegal move, naming the task and both states', () => {
    expect(() => assertTransition('t1', 'completed', 'processing')).toThrow(FanoutError);
    expect(() => assertTransition('t1', 'submitted', 'processing')).toThrow(
      'task t1: illegal transition submitted → processing',
    );
  });

  it('adds the time spent in each state to its bucket as the task moves', () => {
    const task = new Task('t1', 0, { model: 'mock:m', messages: [] }, 'mock:m', 1000);
    task.moveTo('queued', 1000);
    task.moveTo('rate_limited', 1500);
    task.moveTo('processing', 4000);
    expect(task.timing(4250)).toEqual({ queuedMs: 500, rateLimitedMs: 2500, providerMs: 250, totalMs: 3250 });
    task.moveTo('completed', 4300);
    task.endedAt = 4300;
    expect(task.timing(9999)).toEqual({ queuedMs: 500, rateLimitedMs: 2500, providerMs: 300, totalMs: 3300 });
    expect(() => task.moveTo('queued', 5000)).toThrow(/illegal transition completed → queued/);
  });
});
