import { FanoutError } from './errors.js';

/**
 * A task's life: `submitted → queued → processing → completed | failed |
 * cancelled`, with `rate_limited` whenever a permit or a retry wait holds it
 * back. `transitionAllowed` is the one place that says which moves exist.
 */
export type TaskState = 'submitted' | 'queued' | 'rate_limited' | 'processing' | 'completed' | 'failed' | 'cancelled';

export const TASK_STATES: readonly TaskState[] = [
  'submitted',
  'queued',
  'rate_limited',
  'processing',
  'completed',
  'failed',
  'cancelled',
];

const ALLOWED: Readonly<Record<TaskState, readonly TaskState[]>> = {
  // completed straight from submitted: answered from the result cache.
  submitted: ['queued', 'completed', 'failed', 'cancelled'],
  // failed from queued: too large for a limit, or past its deadline;
  // completed from queued: answered by an identical call in flight (single-flight).
  queued: ['processing', 'rate_limited', 'completed', 'failed', 'cancelled'],
  // queued again when a retry wait ends; processing when a permit wait ends.
  rate_limited: ['queued', 'processing', 'failed', 'cancelled'],
  // rate_limited or queued again when an attempt failed and will be retried.
  processing: ['completed', 'failed', 'cancelled', 'rate_limited', 'queued'],
  completed: [],
  failed: [],
  cancelled: [],
};

export function isTerminal(state: TaskState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}

export function transitionAllowed(from: TaskState, to: TaskState): boolean {
  return ALLOWED[from].includes(to);
}

/** Throws when a move is not in the table: that is a bug in fanout, not bad input. */
export function assertTransition(taskId: string, from: TaskState, to: TaskState): void {
  if (!transitionAllowed(from, to)) {
    throw new FanoutError('illegal_transition', `task ${taskId}: illegal transition ${from} → ${to}`);
  }
}
