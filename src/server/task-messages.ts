import type { TaskState } from '../contracts/task-state.js';
import type { EventError, TaskEndEvent, TaskEvent } from '../core/events.js';
import type { TokenLogprob, ToolCallDelta } from '../contracts/types.js';

/** A task's change as a client sees it, over server-sent events and the WebSocket alike. */
export type TaskMessage =
  | {
      type: 'delta';
      task: string;
      text: string;
      at: number;
      toolCall?: ToolCallDelta;
      reasoning?: string;
      logprobs?: TokenLogprob[];
    }
  | { type: 'state'; task: string; state: TaskState; at: number; attempt?: number; eta?: number; error?: EventError };

/** The message for a task event that is not its end (the end is the task's `response` or `error`). */
export function taskMessage(event: Exclude<TaskEvent, TaskEndEvent>): TaskMessage {
  if (event.type === 'task-delta') {
    const delta: TaskMessage = { type: 'delta', task: event.taskId, text: event.delta, at: event.at };
    if (event.toolCall) delta.toolCall = event.toolCall;
    if (event.reasoning) delta.reasoning = event.reasoning;
    if (event.logprobs) delta.logprobs = event.logprobs;
    return delta;
  }
  const message: TaskMessage = { type: 'state', task: event.taskId, state: event.state, at: event.at };
  if ('attempt' in event) message.attempt = event.attempt;
  if ('eta' in event) message.eta = event.eta;
  if ('error' in event) message.error = event.error;
  return message;
}
