import type { FanoutError } from '../contracts/errors.js';
import type { SubmitOptions } from '../core/engine-options.js';
import type { TaskStatus } from '../core/task.js';
import type { TaskRequest } from '../contracts/types.js';
import type { BatchLineOptions } from './batch-line.js';
import { startLine, type StartedLine } from './line-task.js';
import type { OutputLine } from './output-line.js';

/** Where a line sits in its batch. */
export interface LinePlace {
  /** Its place among the batch's non-blank lines, from 0: the order output lines are written in. */
  slot: number;
  /** Its line number in the input, from 1. */
  line: number;
}

/** A line of a batch that has ended: its task's final status, or the error line of a line that never became a task. */
export type LineEnd = LinePlace &
  (
    | { kind: 'task'; taskId: string; customId: string | null; status: TaskStatus | undefined }
    | { kind: 'invalid'; customId: string | null; error: FanoutError; output: OutputLine }
  );

export interface BatchRunnerOptions {
  parse?: BatchLineOptions;
  /** Every line's tenant, whatever the line says (the server's signed-in tenant). */
  tenant?: string;
  /** Names the batch in the task store: each task keeps its batch and line, so the batch can be found again. */
  batchId?: string;
  /** Told of each line that became a task, as it is submitted or followed. */
  onStart?(place: LinePlace, taskId: string, customId: string | null): void;
  /** Told of each line as it ends, in the order they end. */
  onEnd(end: LineEnd): void;
}

/** How `read` takes lines in. */
export interface ReadOptions {
  /** Most lines running at once; reading pauses beyond it. Default: no limit. */
  window?: number;
  /** Stops reading. */
  signal?: AbortSignal;
  /** Looks at a line first; true when it took care of the line itself (a resumed batch's lines already answered). */
  take?: (text: string, place: LinePlace) => boolean;
}

/**
 * What the runner needs of whatever runs the lines: an engine, or a queue
 * that workers run them from (see `queuedRunner` in `src/queue/`).
 */
export interface RunnerEngine {
  submit(request: TaskRequest, options?: SubmitOptions): { id: string };
  /** The task's state if this process holds it. */
  status(id: string): TaskStatus | undefined;
  /** The task's state wherever it is kept. */
  find(id: string): Promise<TaskStatus | undefined>;
  /** Settles when the task has ended. */
  result(id: string): Promise<unknown>;
  /** Resolves once tasks an earlier run left are back in hand. */
  recovered: Promise<unknown>;
}

/**
 * Runs the lines of one batch through the engine: the one batch runner of
 * `fanout batch` and `POST /v1/batches`. Each non-blank line becomes a task
 * (a line that cannot is an error line naming its line number, and the rest
 * goes on); each task is followed to its end; each end is told to `onEnd`
 * with the line's place, so both write the same output lines for the same
 * input.
 */
export class BatchRunner {
  private readonly running = new Set<string>();
  private waiters: Array<() => void> = [];
  private slots = 0;

  constructor(
    private readonly engine: RunnerEngine,
    private readonly options: BatchRunnerOptions,
  ) {}

  /** Lines whose tasks have not ended. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Task ids of the lines still running. */
  runningIds(): string[] {
    return [...this.running];
  }

  /**
   * Reads every line and submits it, keeping at most `window` running.
   * Resolves once every line has been read (or the signal stopped reading);
   * the lines may still be running (see `settled`).
   */
  async read(lines: AsyncIterable<string> | Iterable<string>, options: ReadOptions = {}): Promise<void> {
    const { window = Number.POSITIVE_INFINITY, signal } = options;
    const stopped = stopOf(signal);
    let line = 0;
    for await (const text of lines) {
      line += 1;
      if (text.trim() === '') continue;
      if (signal?.aborted) return;
      const place = { slot: this.slots++, line };
      if (!options.take?.(text, place)) this.submit(text, place);
      while (this.running.size >= window && !signal?.aborted) await Promise.race([this.nextEnd(), stopped]);
    }
  }

  /** Resolves when no line is running, or when `signal` stops the wait. */
  async settled(signal?: AbortSignal): Promise<void> {
    const stopped = stopOf(signal);
    while (this.running.size > 0 && !signal?.aborted) await Promise.race([this.nextEnd(), stopped]);
  }

  /** Submits one line as a task; a line that cannot be one ends at once as an error line. */
  submit(text: string, place: LinePlace): StartedLine {
    const { batchId, tenant, parse } = this.options;
    const batch = batchId === undefined ? undefined : { id: batchId, line: place.line };
    const started = startLine(this.engine, text, place.line, { parse, tenant, submit: { batch } });
    if (started.ok) this.follow(started.taskId, place, started.customId ?? null);
    else
      this.options.onEnd({
        ...place,
        kind: 'invalid',
        customId: started.output.custom_id,
        error: started.error,
        output: started.output,
      });
    return started;
  }

  /** Follows a line's task, new or taken up again from the engine's store, to its end. */
  follow(taskId: string, place: LinePlace, customId: string | null): void {
    this.running.add(taskId);
    this.options.onStart?.(place, taskId, customId);
    const ended = async (): Promise<void> => {
      // An engine forgets the oldest of many ended tasks; its store still has them.
      const status = this.engine.status(taskId) ?? (await this.engine.find(taskId));
      this.running.delete(taskId);
      this.options.onEnd({ ...place, kind: 'task', taskId, customId, status });
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    };
    // A task left unfinished by a crash is back in the engine once its recovery is done.
    this.engine.recovered.then(() => this.engine.result(taskId)).then(ended, ended);
  }

  private nextEnd(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** A promise that resolves when `signal` aborts (never without one). */
function stopOf(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}
