import { failedLine } from '../batch/output-line.js';
import { endedLine } from '../batch/line-task.js';
import { BatchRunner } from '../batch/batch-runner.js';
import type { TaskService } from '../core/task-service.js';
import { FanoutError, type ErrorCode } from '../contracts/errors.js';
import { isTerminal, type TaskState } from '../contracts/task-state.js';
import type { TaskStatus } from '../core/task.js';
import type { TaskRow, TaskStore } from '../contracts/task-store.js';
import { ZERO_COST, type Cost } from '../contracts/limiter.js';
import { readRecord, writeRecord } from './records.js';

interface Entry {
  line: number;
  customId: string | null;
  /** The task, or the error that kept the line from becoming one. */
  taskId?: string;
  error?: { code: ErrorCode; message: string };
  /** Resolves once the task has ended. */
  ended?: Promise<void>;
  /** Resolves `ended`. */
  wake?: () => void;
  /** The state it ended in. */
  endState?: TaskState;
  /** Its final status, kept only when the engine has no store to read it back from (the engine forgets old tasks). */
  final?: TaskStatus;
}

export interface ServerBatch {
  id: string;
  tenant: string;
  createdAt: number;
  state: 'running' | 'completed' | 'cancelled';
  entries: Entry[];
  /** What the lines that ended here sent, per limit key: for the batch's lower bound (not kept in the store). */
  work?: BatchWork;
}

/** What a batch's calls sent and took, per limit key, as its lines ended in this process. */
export interface BatchWork {
  keys: Map<string, { charged: Cost; providerMs: number; shortestCallMs: number }>;
  longestCallMs: number;
  /** When its last line ended. */
  endedAt?: number;
}

/** Adds an ended line's attempts and usage to its batch's work (an answer from the cache sent nothing). */
function addWork(work: BatchWork, status: TaskStatus): void {
  let key = work.keys.get(status.key);
  if (!key) work.keys.set(status.key, (key = { charged: { ...ZERO_COST }, providerMs: 0, shortestCallMs: Infinity }));
  for (const attempt of status.attempts) {
    const ms = (attempt.endedAt ?? attempt.startedAt) - attempt.startedAt;
    key.charged.requests += 1;
    key.providerMs += ms;
    key.shortestCallMs = Math.min(key.shortestCallMs, ms);
    work.longestCallMs = Math.max(work.longestCallMs, ms);
  }
  if (status.usage && !status.result?.cache) {
    key.charged.inputTokens += status.usage.inputTokens;
    key.charged.outputTokens += status.usage.outputTokens;
    key.charged.tokens += status.usage.inputTokens + status.usage.outputTokens;
  }
  work.endedAt = Math.max(work.endedAt ?? 0, status.endedAt ?? 0);
}

/** What a batch's record keeps beside its tasks: the lines that never became one. */
interface BatchData {
  lines: number;
  invalid: Array<{ line: number; customId: string | null; error: { code: ErrorCode; message: string } }>;
}

const ENDED: Promise<void> = Promise.resolve();

/** Runs kept in memory for quick answers; older ones are read from the store. */
export const MAX_KEPT = 1_000;
/** Lines of ended batches kept in memory by a server without a store; the oldest batches beyond it are forgotten. */
export const MAX_KEPT_LINES = 200_000;

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
  throw new FanoutError(
    'invalid_request',
    '(root): expected JSON Lines (application/x-ndjson) or a JSON array of batch lines',
  );
}

/**
 * Batches sent over HTTP: each line becomes a task (a bad line an error line,
 * the rest goes on), counts per state, and results as JSON Lines in input
 * order, in the same shape as `fanout batch` writes. With a store, a batch is
 * a record beside its tasks (each task knows its batch and line), written
 * before the batch is acknowledged: its id answers after a restart, and its
 * unfinished tasks carry on where they were, so no line is paid for twice.
 */
/** Batches one tenant's dashboard lists. */
export const LISTED_BATCHES = 50;

export type BatchListing = ReturnType<BatchRegistry['summary']> & { createdAt: number; work?: BatchWork };

export class BatchRegistry {
  /** Batches going on: each line's task is followed to its end. */
  private readonly live = new Map<string, ServerBatch>();
  /** Ended batches, kept only without a store (with one, they are read back from it when asked for), up to `MAX_KEPT_LINES` lines. */
  private readonly recent = new Map<string, ServerBatch>();
  private recentLines = 0;
  /** The summaries of the latest ended batches, for the dashboard's list (the batches themselves may be in the store only). */
  private readonly endedSummaries = new Map<string, { tenant: string; listing: BatchListing }>();
  private counter = 0;

  constructor(
    private readonly engine: TaskService,
    private readonly options: { defaultProvider?: string; maxLines: number },
  ) {}

  async create(tenant: string, lines: readonly string[]): Promise<ServerBatch> {
    const nonBlank = lines.filter((l) => l.trim() !== '').length;
    if (nonBlank === 0) throw new FanoutError('invalid_request', '(root): the batch has no lines');
    if (nonBlank > this.options.maxLines)
      throw new FanoutError(
        'invalid_request',
        `(root): ${nonBlank} lines; a batch may have at most ${this.options.maxLines}`,
      );
    const id = `batch_${Math.floor(this.engine.clock.now()).toString(36)}${(this.counter++).toString(36)}`;
    const batch: ServerBatch = { id, tenant, createdAt: this.engine.clock.now(), state: 'running', entries: [] };
    const runner = this.runner(batch, tenant);
    await runner.read(lines);
    await this.save(batch);
    // Acknowledged once stored: a crash after the answer loses nothing of it.
    await this.engine.written();
    this.keep(batch);
    return batch;
  }

  /**
   * The batch runner of one batch: a line that becomes a task gets an entry
   * whose `ended` resolves when it ends; a line that cannot be one gets an
   * entry with its error.
   */
  private runner(batch: ServerBatch, tenant: string): BatchRunner {
    const { entries } = batch;
    return new BatchRunner(this.engine, {
      parse: { defaultProvider: this.options.defaultProvider },
      tenant,
      batchId: batch.id,
      onStart: (place, taskId, customId) => {
        entries[place.slot] = this.follow({ line: place.line, customId, taskId });
      },
      onEnd: (end) => {
        if (end.kind === 'invalid') {
          const message = end.output.error?.message ?? end.error.message;
          entries[end.slot] = { line: end.line, customId: end.customId, error: { code: end.error.code, message } };
          return;
        }
        const entry = entries[end.slot];
        if (!entry) return;
        entry.endState = end.status?.state;
        if (end.status) addWork((batch.work ??= { keys: new Map(), longestCallMs: 0 }), end.status);
        if (!this.engine.store) entry.final = end.status;
        entry.wake?.();
        entry.wake = undefined;
      },
    });
  }

  /** A tenant's batch, from memory or the store; another tenant's is as unknown as a missing one. */
  async get(tenant: string, id: string): Promise<ServerBatch | undefined> {
    const batch = this.live.get(id) ?? this.recent.get(id) ?? (await this.load(id));
    return batch && batch.tenant === tenant ? batch : undefined;
  }

  /** Picks up the batches a crash cut short: their tasks are back in the engine; watch them to the end. */
  async resume(): Promise<number> {
    const store = this.engine.store;
    if (!store) return 0;
    const open = await store.openRecords('batch');
    for (const record of open) await this.load(record.id);
    return open.length;
  }

  /** Cancels every line not yet ended; the batch ends `cancelled`. */
  async cancel(batch: ServerBatch): Promise<void> {
    batch.state = 'cancelled';
    for (const entry of batch.entries) if (entry.taskId && !entry.endState) this.engine.cancel(entry.taskId);
    await this.save(batch);
  }

  summary(batch: ServerBatch): {
    id: string;
    state: ServerBatch['state'];
    lines: number;
    counts: Partial<Record<TaskState | 'invalid', number>>;
  } {
    const counts: Partial<Record<TaskState | 'invalid', number>> = {};
    for (const entry of batch.entries) {
      const state = entry.taskId ? (entry.endState ?? this.engine.status(entry.taskId)?.state ?? 'queued') : 'invalid';
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return { id: batch.id, state: batch.state, lines: batch.entries.length, counts };
  }

  /** Output lines in input order, each as soon as its task has ended; `page` picks lines by position. */
  async *results(batch: ServerBatch, page?: { offset: number; limit: number }): AsyncGenerator<string> {
    const entries = page ? batch.entries.slice(page.offset, page.offset + page.limit) : batch.entries;
    for (const entry of entries) {
      if (!entry.taskId) {
        const error = entry.error as { code: ErrorCode; message: string };
        yield `${JSON.stringify(failedLine(entry.line, entry.customId, { code: error.code, message: error.message, retryable: false }))}\n`;
        continue;
      }
      const status = await this.endOf(entry);
      if (status) yield `${JSON.stringify(endedLine(entry.line, entry.customId, status))}\n`;
    }
  }

  /** The status a line's task ended with, once it has. */
  async endOf(entry: Entry): Promise<TaskStatus | undefined> {
    await entry.ended;
    return entry.final ?? (entry.taskId ? await this.engine.find(entry.taskId) : undefined);
  }

  /** An entry whose `ended` resolves once its task has ended (told by the batch runner). */
  private follow(entry: Entry): Entry {
    entry.ended = new Promise((resolve) => (entry.wake = resolve));
    return entry;
  }

  private keep(batch: ServerBatch): void {
    if (batch.state !== 'running') return this.remember(batch);
    this.live.set(batch.id, batch);
    void Promise.all(batch.entries.map((entry) => entry.ended)).then(async () => {
      this.live.delete(batch.id);
      for (const entry of batch.entries) entry.ended = ENDED;
      if (batch.state === 'running') batch.state = 'completed';
      await this.save(batch);
      this.remember(batch);
    });
  }

  /**
   * The tenant's batches, newest first: those going on, then the latest
   * ended (`LISTED_BATCHES` in all); older ones answer by id.
   */
  list(tenant: string): BatchListing[] {
    const live = [...this.live.values()]
      .filter((batch) => batch.tenant === tenant)
      .map((batch) => ({ ...this.summary(batch), createdAt: batch.createdAt, work: batch.work }));
    const ended = [...this.endedSummaries.values()]
      .filter((kept) => kept.tenant === tenant)
      .map((kept) => kept.listing);
    return [...live, ...ended].sort((a, b) => b.createdAt - a.createdAt).slice(0, LISTED_BATCHES);
  }

  /** An ended batch stays in memory only when there is no store to read it back from, within a bound on lines. */
  private remember(batch: ServerBatch): void {
    const listing = { ...this.summary(batch), createdAt: batch.createdAt, work: batch.work };
    this.endedSummaries.set(batch.id, { tenant: batch.tenant, listing });
    forgetOldest(this.endedSummaries, LISTED_BATCHES * 20);
    if (this.engine.store) return;
    this.recent.set(batch.id, batch);
    this.recentLines += batch.entries.length;
    for (const [id, old] of this.recent) {
      if (this.recentLines <= MAX_KEPT_LINES || this.recent.size === 1) break;
      this.recent.delete(id);
      this.recentLines -= old.entries.length;
    }
  }

  private async save(batch: ServerBatch): Promise<void> {
    const data: BatchData = {
      lines: batch.entries.length,
      invalid: batch.entries
        .filter((entry) => !entry.taskId)
        .map((entry) => ({
          line: entry.line,
          customId: entry.customId,
          error: entry.error as { code: ErrorCode; message: string },
        })),
    };
    await writeRecord(this.engine, 'batch', batch, data);
  }

  /** A batch back from its record and its tasks' rows. */
  private async load(id: string): Promise<ServerBatch | undefined> {
    const record = await readRecord(this.engine, 'batch', id);
    if (!record) return undefined;
    const data = record.data as BatchData;
    const rows = await (this.engine.store as TaskStore).listBatch(id);
    const entries: Entry[] = [
      ...data.invalid.map((invalid) => ({ ...invalid })),
      ...rows.map((row: TaskRow): Entry => {
        const entry: Entry = { line: row.line as number, customId: row.request.label ?? null, taskId: row.id };
        if (isTerminal(row.state)) Object.assign(entry, { endState: row.state, ended: ENDED });
        return entry;
      }),
    ].sort((a, b) => a.line - b.line);
    const batch: ServerBatch = {
      id,
      tenant: record.tenant,
      createdAt: record.createdAt,
      state: record.state as ServerBatch['state'],
      entries,
    };
    // Its unfinished tasks are back in the engine (or will be once its recovery is done): follow them to their end.
    const runner = this.runner(batch, record.tenant);
    entries.forEach((entry, slot) => {
      if (entry.taskId && !entry.ended) runner.follow(entry.taskId, { slot, line: entry.line }, entry.customId);
    });
    this.keep(batch);
    return batch;
  }
}
