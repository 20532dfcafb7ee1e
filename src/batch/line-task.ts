import { asFanoutError, type FanoutError } from '../contracts/errors.js';
import type { TaskRequest } from '../contracts/types.js';
import type { SubmitOptions } from '../core/engine-options.js';
import type { TaskStatus } from '../core/task.js';
import { parseBatchLine, salvageCustomId, type BatchLineOptions } from './batch-line.js';
import { completedLine, failedLine, type OutputLine } from './output-line.js';

/** One input line of a batch, made a task; or, when it cannot be one, the error line it becomes. */
export type StartedLine =
  { ok: true; taskId: string; customId: string } | { ok: false; error: FanoutError; output: OutputLine };

/**
 * Parses one batch line and submits its task: the one way a line becomes a
 * task, for `fanout batch` and `POST /v1/batches` alike, so both write the
 * same lines for the same input. A line that is not a valid request becomes
 * an error line naming its line number; nothing is submitted for it.
 */
export function startLine(
  engine: { submit(request: TaskRequest, options?: SubmitOptions): { id: string } },
  text: string,
  line: number,
  options: { parse?: BatchLineOptions; tenant?: string; submit?: SubmitOptions } = {},
): StartedLine {
  let customId: string | undefined;
  try {
    const parsed = parseBatchLine(text, line, options.parse);
    customId = parsed.customId;
    const request = options.tenant === undefined ? parsed.request : { ...parsed.request, tenant: options.tenant };
    return { ok: true, taskId: engine.submit(request, options.submit).id, customId };
  } catch (raw) {
    const error = asFanoutError(raw, 'invalid_request');
    const message = error.message.startsWith('line ') ? error.message : `line ${line}: ${error.message}`;
    const output = failedLine(line, customId ?? salvageCustomId(text) ?? null, {
      code: error.code,
      message,
      retryable: false,
    });
    return { ok: false, error, output };
  }
}

/** The output line of a line whose task has ended. */
export function endedLine(line: number, customId: string | null, status: TaskStatus): OutputLine {
  if (status.state === 'completed') return completedLine(line, customId, status);
  const error = status.error ?? { code: 'cancelled' as const, message: 'cancelled', retryable: false };
  return failedLine(line, customId, error, status);
}
