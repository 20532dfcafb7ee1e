import { parseBatchLine, salvageCustomId } from '../batch/batch-line.js';
import { completedLine, failedLine } from '../batch/output-line.js';
import type { FanoutEngine } from '../create-engine.js';
import { asFanoutError, FanoutError } from '../core/errors.js';
import type { TaskState } from '../core/task-state.js';
import type { TaskStatus } from '../core/task.js';

interface Entry {
  line: number;
  customId: string | null;
  /** The task, or the error that kept the line from becoming one. */
  taskId?: string;
  error?: FanoutError;
  /** The task's status when it ended (kept here: the engine forgets old ended tasks). */
  ended?: Promise<TaskStatus | undefined>;
  final?: TaskStatus;
}

export interface ServerBatch {
  id: string;
  tenant: string;
  createdAt: number;
  entries: Entry[];
}

/** Batches (and runs) kept for status and results; the oldest beyond this are forgotten. */
export const MAX_KEPT = 10_000;

/** Drops the oldest entries of an insertion-ordered map beyond `max`. */
export function forgetOldest<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}

/** The lines of a batch body: JSON Lines text, or a JSON array of line objects. */
export function batchLines(body: unknown): string[] {
  if (typeof body === 'string') return body.split('\n');
  if (Array.isArray(body)) return body.map((item) => JSON.stringify(item));
  throw new FanoutError('invalid_request', '(root): expected JSON Lines (application/x-ndjson) or a JSON array of batch lines');
}

/**
 * Batches sent over HTTP: each line becomes a task (a bad line an error line,
 * the rest goes on), counts per state, and results as JSON Lines in input
 * order, in the same shape as `fanout batch` writes.
 */
export class BatchRegistry {
  private readonly batches = new Map<string, ServerBatch>();
  private counter = 0;

  constructor(
    private readonly engine: FanoutEngine,
    private readonly options: { defaultProvider?: string; maxLines: number },
  ) {}

  create(tenant: string, lines: readonly string[]): ServerBatch {
    const nonBlank = lines.filter((l) => l.trim() !== '').length;
    if (nonBlank === 0) throw new FanoutError('invalid_request', '(root): the batch has no lines');
    if (nonBlank > this.options.maxLines) throw new FanoutError('invalid_request', `(root): ${nonBlank} lines; a batch may have at most ${this.options.maxLines}`);
    const id = `batch_${Math.floor(this.engine.clock.now()).toString(36)}${(this.counter++).toString(36)}`;
    const batch: ServerBatch = { id, tenant, createdAt: this.engine.clock.now(), entries: [] };
    lines.forEach((text, index) => {
      if (text.trim() === '') return;
      const line = index + 1;
      try {
        const parsed = parseBatchLine(text, line, { defaultProvider: this.options.defaultProvider });
        const taskId = this.engine.submit({ ...parsed.request, tenant }).id;
        const entry: Entry = { line, customId: parsed.customId, taskId };
        const keep = (): TaskStatus | undefined => (entry.final = this.engine.status(taskId));
        entry.ended = this.engine.result(taskId).then(keep, keep);
        batch.entries.push(entry);
      } catch (error) {
        batch.entries.push({ line, customId: salvageCustomId(text) ?? null, error: asFanoutError(error, 'invalid_request') });
      }
    });
    this.batches.set(id, batch);
    forgetOldest(this.batches, MAX_KEPT);
    return batch;
  }

  /** A tenant's batch; another tenant's is as unknown as a missing one. */
  get(tenant: string, id: string): ServerBatch | undefined {
    const batch = this.batches.get(id);
    return batch && batch.tenant === tenant ? batch : undefined;
  }

  summary(batch: ServerBatch): { id: string; lines: number; counts: Partial<Record<TaskState | 'invalid', number>> } {
    const counts: Partial<Record<TaskState | 'invalid', number>> = {};
    for (const entry of batch.entries) {
      const state = entry.taskId ? (entry.final?.state ?? this.engine.status(entry.taskId)?.state ?? 'queued') : 'invalid';
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return { id: batch.id, lines: batch.entries.length, counts };
  }

  /** Output lines in input order, each as soon as its task has ended. */
  async *results(batch: ServerBatch): AsyncGenerator<string> {
    for (const entry of batch.entries) {
      if (!entry.taskId) {
        const error = entry.error as FanoutError;
        yield `${JSON.stringify(failedLine(entry.line, entry.customId, { code: error.code, message: error.message, retryable: false }))}\n`;
        continue;
      }
      const status = await entry.ended;
      if (!status) continue;
      const line = status.state === 'completed' ? completedLine(entry.line, entry.customId, status) : failedLine(entry.line, entry.customId, status.error ?? { code: 'cancelled', message: 'cancelled', retryable: false }, status);
      yield `${JSON.stringify(line)}\n`;
    }
  }
}
