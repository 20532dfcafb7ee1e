import type { Engine } from '../core/engine.js';
import { statusFromRow, type TaskStatus } from '../core/task.js';
import { addUsage, ZERO_USAGE, type Usage } from '../contracts/types.js';
import { ZERO_COST, type Cost } from '../contracts/limiter.js';
import { lowerBound, type KeyWork, type LowerBound } from '../metrics/lower-bound.js';
import { percentiles } from '../metrics/percentiles.js';
import type { BatchLineOptions } from './batch-line.js';
import { endedLine } from './line-task.js';
import { BatchRunner, type LineEnd, type LinePlace, type RunnerEngine } from './batch-runner.js';
import type { TaskRow } from '../contracts/task-store.js';
import type { OutputLine } from './output-line.js';

export interface BatchOptions {
  engine: Engine;
  /**
   * The engine was made for this batch: the run counts from the engine's
   * start, so calls of tasks it took up again from its store before the
   * batch began are this run's (wall time, attempts and the lower bound).
   * Default: the run counts from `runBatch`.
   */
  ownsEngine?: boolean;
  /** Input lines, without their line ends. Blank lines are skipped and get no output line. */
  lines: AsyncIterable<string>;
  /** Receives output text (whole lines, each ending in "\n") in input order. May return a promise to apply backpressure. */
  write: (text: string) => void | Promise<void>;
  parse?: BatchLineOptions;
  /** Most tasks submitted and not yet ended at once; reading pauses beyond it. Default 10,000. */
  window?: number;
  /**
   * Stops reading and stops waiting: what has finished is written (in order,
   * as far as it goes), what has not stays with the engine (and its store)
   * for a later run to resume.
   */
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
  /** Picks up a batch an earlier run left unfinished. */
  resume?: BatchResume;
  /**
   * Where the lines run, when not on `engine`: a queue that workers run them
   * from (`engine` then counts only what this process ran of them).
   */
  runOn?: RunnerEngine;
}

export interface BatchResume {
  /** Names the batch in the task store: the same input and output give the same id. */
  batchId: string;
  /** Non-blank input lines already answered in the output, from the top. */
  written: number;
  /** What the task store holds of this batch, by input line number. */
  stored: ReadonlyMap<number, TaskRow>;
}

export interface BatchProgress {
  read: number;
  completed: number;
  failed: number;
  /** Calls in flight now. */
  inFlight: number;
  /** Tasks queued or rate-limited now (this engine's, all sources). */
  waiting: number;
}

export interface BatchSummary {
  /** Non-blank input lines read. */
  lines: number;
  completed: number;
  /** Lines that ran and failed, plus lines that could not be parsed or validated. */
  failed: number;
  invalid: number;
  cancelled: number;
  /** Lines answered from the result cache or by an identical call in flight, with no call of their own. */
  cacheHits: number;
  /** True when the signal stopped the batch before every line was read and run. */
  interrupted: boolean;
  /**
   * What an earlier run left: lines it had written (`written`), lines whose
   * answer its store held (`stored`, written now without a call), and
   * unfinished tasks the engine took up again (`running`).
   */
  resumed: { written: number; stored: number; running: number };
  /** Lines this run wrote to the output. Short of the lines that ended when a stop came before an earlier line was done: those stay in the store for the next run. */
  written: number;
  errorsByCode: Record<string, number>;
  usage: Usage;
  attempts: number;
  retries: number;
  /** Attempts answered 429 by a provider. */
  http429: number;
  wallMs: number;
  latencyMs: { p50?: number; p90?: number; p99?: number };
  lowerBound: LowerBound;
  /** lowerBound ÷ wall time: 1 means no schedule could have been faster. */
  utilisation: number;
}

/**
 * Writes finished lines in input order as soon as every earlier line is done,
 * one write at a time (a slow disk is waited for, never written to in parallel).
 */
class OrderedWriter {
  private readonly done = new Map<number, string>();
  private chain: Promise<void> = Promise.resolve();

  /** `next` is the first index to write: lines before it are already in the output. */
  constructor(
    private readonly write: (text: string) => void | Promise<void>,
    private next = 0,
  ) {
    this.first = next;
  }

  /** Lines written (or queued for writing) by this writer. */
  get count(): number {
    return this.next - this.first;
  }

  private readonly first: number;

  put(index: number, line: OutputLine): void {
    this.done.set(index, `${JSON.stringify(line)}\n`);
    let chunk = '';
    for (let text = this.done.get(this.next); text !== undefined; text = this.done.get(this.next)) {
      this.done.delete(this.next);
      this.next += 1;
      chunk += text;
    }
    if (chunk) this.chain = this.chain.then(() => this.write(chunk));
  }

  /** Resolves when everything put so far is written; rejects with the first write error. */
  flushed(): Promise<void> {
    return this.chain;
  }
}

/**
 * Runs a batch through the engine: parses each line, submits it, and writes
 * one output line per input line in input order. A bad line becomes an error
 * line with its line number; the rest of the batch goes on.
 *
 * Resuming: the first `written` lines are already in the output and are
 * skipped; a line whose task the store holds ended is written from the store
 * (no call); one whose task is still running (the engine recovered it) is
 * waited for; the rest are submitted. Each write waits for the engine's store
 * to hold everything finished so far, so a line in the output always has its
 * task's end in the store.
 */
export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  return new BatchRun(options).run();
}

class BatchRun {
  private readonly engine: Engine;
  private readonly runner: BatchRunner;
  private readonly writer: OrderedWriter;
  private readonly startedAt: number;
  private readonly statuses: TaskStatus[] = [];
  /** Tasks a stop cancelled: no answer, but their calls were made and count in the run's bound. */
  private readonly stopped: TaskStatus[] = [];
  /** What the limiter had charged on each key before this run: the run's figures count only what it adds. */
  private readonly chargedBefore: ReadonlyMap<string, Cost> = new Map();
  private readonly counts = { read: 0, completed: 0, failed: 0, invalid: 0, cancelled: 0 };
  private readonly resumed = { written: 0, stored: 0, running: 0 };
  private readonly errorsByCode: Record<string, number> = {};

  constructor(private readonly options: BatchOptions) {
    this.engine = options.engine;
    const engine = this.engine;
    this.startedAt = options.ownsEngine ? engine.startedAt : engine.clock.now();
    if (!options.ownsEngine) this.chargedBefore = chargesOf(engine);
    this.writer = new OrderedWriter(async (text) => {
      await engine.flush();
      await options.write(text);
    }, options.resume?.written ?? 0);
    this.runner = new BatchRunner(options.runOn ?? engine, {
      parse: options.parse,
      batchId: options.resume?.batchId,
      onEnd: (end) => this.lineEnded(end),
    });
  }

  async run(): Promise<BatchSummary> {
    const { options, runner } = this;
    const { signal } = options;
    const take = (_text: string, place: LinePlace) => this.resumedLine(place);
    await runner.read(options.lines, { window: options.window ?? 10_000, signal, take });
    await runner.settled(signal);
    await this.writer.flushed();
    this.progress();
    return summarise(this.engine, {
      counts: this.counts,
      resumed: this.resumed,
      written: this.writer.count,
      errorsByCode: this.errorsByCode,
      interrupted: signal?.aborted ?? false,
      statuses: this.statuses,
      // A stop leaves calls in flight (the engine cancels them when it closes): they were made all the same.
      stopped: [...this.stopped, ...runner.runningIds().flatMap((id) => this.engine.status(id) ?? [])],
      startedAt: this.startedAt,
      chargedBefore: this.chargedBefore,
      wallMs: this.engine.clock.now() - this.startedAt,
    });
  }

  /**
   * A line of a batch taken up again: already in the output (skipped), answered
   * in the store (written from it, no call), or still running in the engine
   * (followed). False for a line to submit.
   */
  private resumedLine(place: LinePlace): boolean {
    const resume = this.options.resume;
    if (resume && place.slot < resume.written) {
      this.resumed.written += 1;
      return true;
    }
    this.counts.read += 1;
    const stored = resume?.stored.get(place.line);
    if (!stored) return false;
    const label = stored.request.label ?? null;
    if (stored.state === 'completed' || stored.state === 'failed') {
      this.resumed.stored += 1;
      this.taskEnded(place.slot, place.line, label, statusFromRow(stored));
      return true;
    }
    // Not ended: running in this engine (it took the task up again), or still in the queue the lines run from.
    if ((this.options.runOn !== undefined || this.engine.status(stored.id)) && stored.state !== 'cancelled') {
      this.resumed.running += 1;
      this.runner.follow(stored.id, place, label);
      return true;
    }
    return false;
  }

  private lineEnded(end: LineEnd): void {
    if (end.kind === 'invalid') {
      this.counts.invalid += 1;
      this.counts.failed += 1;
      this.countError(end.error.code);
      this.writer.put(end.slot, end.output);
      return;
    }
    const status = end.status;
    if (status) this.taskEnded(end.slot, end.line, end.customId, status);
    this.progress();
  }

  private taskEnded(slot: number, lineNumber: number, customId: string | null, status: TaskStatus): void {
    // A task cancelled by a shutdown is not an answer: a later run does it again.
    if (status.state === 'cancelled' && this.options.signal?.aborted) {
      this.stopped.push(status);
      return;
    }
    this.statuses.push(status);
    this.writer.put(slot, endedLine(lineNumber, customId, status));
    if (status.state === 'completed') {
      this.counts.completed += 1;
      return;
    }
    this.counts.failed += 1;
    if (status.state === 'cancelled') this.counts.cancelled += 1;
    this.countError(status.error?.code ?? 'cancelled');
  }

  private countError(code: string): void {
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
  }

  private progress(): void {
    const { engine, counts } = this;
    this.options.onProgress?.({
      read: counts.read,
      completed: counts.completed,
      failed: counts.failed,
      inFlight: engine.inFlight,
      waiting: engine.pendingCount - engine.inFlight,
    });
  }
}

/** A stored task as the output needs it. */
interface Collected {
  counts: { read: number; completed: number; failed: number; invalid: number; cancelled: number };
  resumed: BatchSummary['resumed'];
  written: number;
  errorsByCode: Record<string, number>;
  interrupted: boolean;
  /** Every line that ended, answered now or from the store. */
  statuses: TaskStatus[];
  stopped: TaskStatus[];
  /** When this run began: attempts before it were an earlier run's. */
  startedAt: number;
  chargedBefore: ReadonlyMap<string, Cost>;
  wallMs: number;
}

/**
 * The run's figures, over what this run did: its attempts (an earlier run's,
 * kept in the store with a task, are left out), the tokens of the answers its
 * calls brought, and what it added to each limit key's charges. So the lower
 * bound is of this run's work under the limits that applied to it, and never
 * above its wall time.
 */
function summarise(engine: Engine, collected: Collected): BatchSummary {
  const { statuses, counts, wallMs, startedAt } = collected;
  let usage: Usage = { ...ZERO_USAGE };
  let cacheHits = 0;
  let attempts = 0;
  let retries = 0;
  let http429 = 0;
  let longestCallMs = 0;
  const providerMsByKey = new Map<string, number>();
  const shortestByKey = new Map<string, number>();
  const latencies: number[] = [];
  const now = engine.clock.now();
  for (const status of [...statuses, ...collected.stopped]) {
    const answered = status.state !== 'cancelled';
    let sentNow = false;
    for (const attempt of status.attempts) {
      if (attempt.startedAt < startedAt) continue;
      sentNow = true;
      attempts += 1;
      if (attempt.attempt > 1) retries += 1;
      if (attempt.error?.status === 429) http429 += 1;
      const ms = (attempt.endedAt ?? now) - attempt.startedAt;
      longestCallMs = Math.max(longestCallMs, ms);
      shortestByKey.set(status.key, Math.min(shortestByKey.get(status.key) ?? ms, ms));
      providerMsByKey.set(status.key, (providerMsByKey.get(status.key) ?? 0) + ms);
    }
    // A line answered from an earlier run's store ended before this run began.
    if (!answered || (status.endedAt ?? now) < startedAt) continue;
    // An answer handed over from the cache spent nothing now: its tokens were counted when it was made.
    if (status.result?.cache) cacheHits += 1;
    else if (sentNow && status.usage) usage = addUsage(usage, status.usage);
    if (status.state === 'completed') latencies.push(status.timing.totalMs);
  }
  const keys: KeyWork[] = [...providerMsByKey].map(([key, providerMs]) => ({
    key,
    providerMs,
    shortestCallMs: shortestByKey.get(key) ?? 0,
    buckets: engine.limiter.buckets(key),
    charged: chargedSince(engine.limiter.stats(key)?.charged, collected.chargedBefore.get(key)),
    maxConcurrent: engine.limiter.maxConcurrent(key),
  }));
  const bound = lowerBound(keys, engine.concurrency, longestCallMs);
  const [p50, p90, p99] = percentiles(latencies, [50, 90, 99]);
  return {
    lines: counts.read,
    completed: counts.completed,
    failed: counts.failed,
    invalid: counts.invalid,
    cancelled: counts.cancelled,
    cacheHits,
    interrupted: collected.interrupted,
    resumed: collected.resumed,
    written: collected.written,
    errorsByCode: collected.errorsByCode,
    usage,
    attempts,
    retries,
    http429,
    wallMs,
    latencyMs: { p50, p90, p99 },
    lowerBound: bound,
    utilisation: wallMs > 0 ? bound.ms / wallMs : 1,
  };
}

function chargedSince(now: Cost | undefined, before: Cost | undefined): Cost {
  const a = now ?? ZERO_COST;
  const b = before ?? ZERO_COST;
  return {
    requests: a.requests - b.requests,
    tokens: a.tokens - b.tokens,
    inputTokens: a.inputTokens - b.inputTokens,
    outputTokens: a.outputTokens - b.outputTokens,
  };
}

/** What the engine's limiter has charged on each key so far. */
function chargesOf(engine: Engine): Map<string, Cost> {
  const charges = new Map<string, Cost>();
  for (const key of engine.limiter.keyNames()) {
    const charged = engine.limiter.stats(key)?.charged;
    if (charged) charges.set(key, charged);
  }
  return charges;
}
