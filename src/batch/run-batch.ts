import type { Engine } from '../core/engine.js';
import { asFanoutError } from '../core/errors.js';
import type { TaskStatus } from '../core/task.js';
import { addUsage, ZERO_USAGE, type Usage } from '../core/types.js';
import { lowerBound, type KeyWork, type LowerBound } from '../metrics/lower-bound.js';
import { percentiles } from '../metrics/percentiles.js';
import { parseBatchLine, salvageCustomId, type BatchLineOptions } from './batch-line.js';
import { completedLine, failedLine, type OutputLine } from './output-line.js';

export interface BatchOptions {
  engine: Engine;
  /** Input lines, without their line ends. Blank lines are skipped and get no output line. */
  lines: AsyncIterable<string>;
  /** Receives output text (whole lines, each ending in "\n") in input order. May return a promise to apply backpressure. */
  write: (text: string) => void | Promise<void>;
  parse?: BatchLineOptions;
  /** Most tasks submitted and not yet ended at once; reading pauses beyond it. Default 10,000. */
  window?: number;
  /** Stops reading and cancels what has not ended; cancelled lines are written as errors. */
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
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
  private next = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly write: (text: string) => void | Promise<void>) {}

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
 */
export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  const { engine } = options;
  const window = options.window ?? 10_000;
  const writer = new OrderedWriter(options.write);
  const startedAt = engine.clock.now();
  const statuses: TaskStatus[] = [];
  const running = new Set<string>();
  const counts = { read: 0, completed: 0, failed: 0, invalid: 0, cancelled: 0 };
  const errorsByCode: Record<string, number> = {};
  let slotFree: (() => void) | undefined;
  let interrupted = false;

  const progress = (): void => options.onProgress?.({ read: counts.read, completed: counts.completed, failed: counts.failed, inFlight: engine.inFlight, waiting: engine.pendingCount - engine.inFlight });
  const countError = (code: string): void => {
    errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
  };
  const onAbort = (): void => {
    interrupted = true;
    for (const id of running) engine.cancel(id);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let lineNumber = 0;
  let index = 0;
  for await (const text of options.lines) {
    lineNumber += 1;
    if (text.trim() === '') continue;
    if (options.signal?.aborted) break;
    const slot = index++;
    counts.read += 1;
    let customId: string | undefined;
    let id: string;
    try {
      const parsed = parseBatchLine(text, lineNumber, options.parse);
      customId = parsed.customId;
      id = engine.submit(parsed.request).id;
    } catch (raw) {
      const error = asFanoutError(raw, 'invalid_request');
      const message = error.message.startsWith('line ') ? error.message : `line ${lineNumber}: ${error.message}`;
      counts.invalid += 1;
      counts.failed += 1;
      countError(error.code);
      writer.put(slot, failedLine(lineNumber, customId ?? salvageCustomId(text) ?? null, { code: error.code, message, retryable: false }));
      continue;
    }
    running.add(id);
    const line = lineNumber;
    const label = customId;
    const settle = (): void => {
      running.delete(id);
      const status = engine.status(id) as TaskStatus;
      statuses.push(status);
      if (status.state === 'completed') {
        counts.completed += 1;
        writer.put(slot, completedLine(line, label, status));
      } else {
        counts.failed += 1;
        if (status.state === 'cancelled') counts.cancelled += 1;
        const error = status.error ?? { code: 'cancelled' as const, message: 'cancelled', retryable: false };
        countError(error.code);
        writer.put(slot, failedLine(line, label, error, status));
      }
      progress();
      slotFree?.();
    };
    engine.result(id).then(settle, settle);
    if (running.size >= window) {
      await new Promise<void>((resolve) => {
        slotFree = resolve;
      });
      slotFree = undefined;
    }
  }
  if (options.signal?.aborted) interrupted = true;
  while (running.size > 0) {
    await new Promise<void>((resolve) => {
      slotFree = resolve;
    });
  }
  await writer.flushed();
  options.signal?.removeEventListener('abort', onAbort);
  progress();
  return summarise(engine, { counts, errorsByCode, interrupted, statuses, wallMs: engine.clock.now() - startedAt });
}

interface Collected {
  counts: { read: number; completed: number; failed: number; invalid: number; cancelled: number };
  errorsByCode: Record<string, number>;
  interrupted: boolean;
  statuses: TaskStatus[];
  wallMs: number;
}

function summarise(engine: Engine, collected: Collected): BatchSummary {
  const { statuses, counts, wallMs } = collected;
  let usage: Usage = { ...ZERO_USAGE };
  let cacheHits = 0;
  let attempts = 0;
  let http429 = 0;
  let longestCallMs = 0;
  const providerMsByKey = new Map<string, number>();
  const shortestByKey = new Map<string, number>();
  const latencies: number[] = [];
  for (const status of statuses) {
    // An answer handed over from the cache spent nothing now: its tokens were counted when it was made.
    if (status.result?.cache) cacheHits += 1;
    else if (status.usage) usage = addUsage(usage, status.usage);
    attempts += status.attempts.length;
    for (const attempt of status.attempts) {
      if (attempt.error?.status === 429) http429 += 1;
      const ms = (attempt.endedAt ?? attempt.startedAt) - attempt.startedAt;
      longestCallMs = Math.max(longestCallMs, ms);
      shortestByKey.set(status.key, Math.min(shortestByKey.get(status.key) ?? ms, ms));
    }
    providerMsByKey.set(status.key, (providerMsByKey.get(status.key) ?? 0) + status.timing.providerMs);
    if (status.state === 'completed') latencies.push(status.timing.totalMs);
  }
  const keys: KeyWork[] = [...providerMsByKey].map(([key, providerMs]) => ({
    key,
    providerMs,
    shortestCallMs: shortestByKey.get(key) ?? 0,
    buckets: engine.limiter.buckets(key),
    charged: engine.limiter.stats(key)?.charged ?? { requests: 0, tokens: 0, inputTokens: 0, outputTokens: 0 },
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
    errorsByCode: collected.errorsByCode,
    usage,
    attempts,
    retries: Math.max(0, attempts - statuses.filter((s) => s.attempts.length > 0).length),
    http429,
    wallMs,
    latencyMs: { p50, p90, p99 },
    lowerBound: bound,
    utilisation: wallMs > 0 ? bound.ms / wallMs : 1,
  };
}
