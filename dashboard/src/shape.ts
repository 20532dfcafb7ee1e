/**
 * The dashboard's data shaping: pure functions from what the server sends to
 * what the page draws. No clock, no randomness: the current time is an
 * argument wherever it matters.
 */
import type { BucketLevelLine, SecondColumns } from '../../src/server/dashboard/message.js';

/** A call as the server tells it: a run's timeline entry, or a task of the live table. */
export interface CallLike {
  /** Task id. */
  taskId?: string;
  id?: string;
  step?: string;
  label?: string;
  item?: number;
  model: string;
  state?: string;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  queuedMs?: number;
  rateLimitedMs?: number;
  providerMs?: number;
}

export interface ToolLike {
  step: string;
  tool?: string;
  item?: number;
  startedAt: number;
  endedAt: number;
}

/** One bar of a gantt chart, in ms from the run's start. */
export interface Bar {
  label: string;
  submitted: number;
  /** When its last attempt started (the end of its wait). */
  started: number;
  ended: number;
  /** Of the wait before `started`: the part held by a limit or a retry; the rest waited for a turn. */
  rateLimitedMs: number;
  /** Still going: `ended` is now. */
  open: boolean;
  critical: boolean;
}

export interface Gantt {
  bars: Bar[];
  wallMs: number;
}

/**
 * A run's calls and tools as gantt bars on one time axis, from the earliest
 * submission; calls still going end at `now`. The critical path is marked.
 */
export function ganttOf(calls: readonly CallLike[], tools: readonly ToolLike[], now: number): Gantt {
  const starts = [...calls.map((c) => c.submittedAt), ...tools.map((t) => t.startedAt)];
  if (starts.length === 0) return { bars: [], wallMs: 0 };
  const origin = Math.min(...starts);
  const bars: Bar[] = [
    ...calls.map((call) => {
      const ended = call.endedAt ?? now;
      const started = call.startedAt ?? (call.endedAt === undefined ? ended : ended - (call.providerMs ?? 0));
      const wait = Math.max(0, started - call.submittedAt);
      return {
        label: callLabel(call),
        submitted: call.submittedAt - origin,
        started: started - origin,
        ended: ended - origin,
        rateLimitedMs: Math.min(wait, call.rateLimitedMs ?? 0),
        open: call.endedAt === undefined,
        critical: false,
      };
    }),
    ...tools.map((tool) => ({
      label: `${tool.step}${tool.item === undefined ? '' : `[${tool.item}]`} (${tool.tool ?? 'tool'})`,
      submitted: tool.startedAt - origin,
      started: tool.startedAt - origin,
      ended: tool.endedAt - origin,
      rateLimitedMs: 0,
      open: false,
      critical: false,
    })),
  ].sort((a, b) => a.submitted - b.submitted || a.started - b.started || a.label.localeCompare(b.label));
  for (const index of criticalPath(bars)) (bars[index] as Bar).critical = true;
  return { bars, wallMs: Math.max(0, ...bars.map((bar) => bar.ended)) };
}

function callLabel(call: CallLike): string {
  const step = call.step ?? call.label ?? call.taskId ?? call.id ?? 'call';
  const item = call.step !== undefined && call.item !== undefined ? `[${call.item}]` : '';
  return `${step}${item} ${call.model}`;
}

/**
 * The chain of bars that set the run's wall time, read from the timings alone:
 * from the bar that ended last, back through, each time, the bar that ended
 * last before it was submitted (the one it waited for). Indices into `bars`.
 */
export function criticalPath(bars: readonly Pick<Bar, 'submitted' | 'ended'>[]): number[] {
  if (bars.length === 0) return [];
  const path: number[] = [];
  const taken = new Set<number>();
  let current = latestEnding(bars, Infinity, taken);
  while (current !== undefined) {
    path.push(current);
    taken.add(current);
    const submitted = (bars[current] as Pick<Bar, 'submitted'>).submitted;
    current = latestEnding(bars, submitted, taken);
  }
  return path.reverse();
}

/** The bar not yet `taken`, submitted before `by`, that ended last at or before it (the first such in order on a tie), if any. */
function latestEnding(
  bars: readonly Pick<Bar, 'submitted' | 'ended'>[],
  by: number,
  taken: Set<number>,
): number | undefined {
  let best: number | undefined;
  bars.forEach((bar, index) => {
    // A bar submitted at the same moment or later cannot be what this one waited for.
    if (bar.ended > by || bar.submitted >= by || taken.has(index)) return;
    if (best === undefined || bar.ended > (bars[best] as Pick<Bar, 'ended'>).ended) best = index;
  });
  return best;
}

/**
 * The same work one call after another (seed 000's picture): each bar's own
 * time (from its start to its end, waits left out) laid end to end, in the
 * run's order.
 */
export function sequentialOf(gantt: Gantt): Gantt {
  let at = 0;
  const bars = gantt.bars.map((bar) => {
    const busy = Math.max(0, bar.ended - bar.started);
    const laid: Bar = { ...bar, submitted: at, started: at, ended: at + busy, rateLimitedMs: 0, critical: false };
    at += busy;
    return laid;
  });
  return { bars, wallMs: at };
}

/** A bucket's level as the dashboard draws it. */
export type BucketLike = BucketLevelLine;

const BUCKET_NAMES: Record<string, string> = {
  requestsPerMinute: 'requests / min',
  requestsPerDay: 'requests / day',
  tokensPerMinute: 'tokens / min',
  inputTokensPerMinute: 'input tokens / min',
  outputTokensPerMinute: 'output tokens / min',
};

/** Share of the bucket in use now (0: full, any burst may go; 1: empty, calls wait for refill), and its words. */
export function bucketFill(bucket: BucketLike): { used: number; title: string; detail: string } {
  const used = bucket.capacity > 0 ? clamp(1 - bucket.remaining / bucket.capacity, 0, 1) : 0;
  const title = BUCKET_NAMES[bucket.name] ?? bucket.name;
  const detail = `${formatCount(Math.max(0, Math.floor(bucket.remaining)))} of ${formatCount(bucket.capacity)} left · limit ${formatCount(bucket.limit)} per ${formatMs(bucket.windowMs)}${bucket.resetMs > 0 ? ` · full in ${formatMs(bucket.resetMs)}` : ''}`;
  return { used, title, detail };
}

/** A key's calls in flight against its concurrency limit, drawn like a bucket. */
export function concurrencyFill(inFlight: number, max: number): { used: number; title: string; detail: string } {
  return {
    used: max > 0 ? clamp(inFlight / max, 0, 1) : 0,
    title: 'calls in flight',
    detail: `${formatCount(inFlight)} of ${formatCount(max)} at once`,
  };
}

/** Per-second columns as the server sends them. */
export type Seconds = SecondColumns;

/** uPlot's data: x in epoch seconds, then one array per series. */
export function chartData(seconds: Seconds, fields: readonly (keyof Omit<Seconds, 'start'>)[]): number[][] {
  const x = seconds.completed.map((_, i) => seconds.start + i);
  return [x, ...fields.map((field) => seconds[field])];
}

/** Completions and tokens per second over the last `window` seconds (the current second left out: it is not over). */
export function rates(seconds: Seconds, window = 10): { completions: number; tokens: number } {
  const end = seconds.completed.length - 1;
  const from = Math.max(0, end - window);
  const sum = (values: number[]): number => values.slice(from, end).reduce((a, b) => a + b, 0);
  const span = Math.max(1, end - from);
  return { completions: sum(seconds.completed) / span, tokens: sum(seconds.tokens) / span };
}

/** Where the time of the calls that ended went: queued, rate-limited, at the provider; shares of the whole. */
export function timeSplit(seconds: Seconds): {
  queued: number;
  rateLimited: number;
  provider: number;
  totalMs: number;
} {
  const total = (values: number[]): number => values.reduce((a, b) => a + b, 0);
  const queued = total(seconds.queuedMs);
  const rateLimited = total(seconds.rateLimitedMs);
  const provider = total(seconds.providerMs);
  const all = queued + rateLimited + provider;
  if (all === 0) return { queued: 0, rateLimited: 0, provider: 0, totalMs: 0 };
  return { queued: queued / all, rateLimited: rateLimited / all, provider: provider / all, totalMs: all };
}

export interface TaskFilter {
  state?: string;
  model?: string;
  /** Part of the id or the step. */
  text?: string;
}

export function filterTasks<T extends { id: string; model: string; state: string; label?: string }>(
  tasks: readonly T[],
  filter: TaskFilter,
): T[] {
  const text = filter.text?.trim().toLowerCase();
  return tasks.filter(
    (task) =>
      (!filter.state || task.state === filter.state) &&
      (!filter.model || task.model === filter.model) &&
      (!text || task.id.toLowerCase().includes(text) || (task.label ?? '').toLowerCase().includes(text)),
  );
}

/** A batch's progress: lines ended (any way) of all lines. */
export function batchProgress(batch: { lines: number; counts: Record<string, number | undefined> }): {
  done: number;
  fraction: number;
} {
  const ended = ['completed', 'failed', 'cancelled', 'invalid'];
  const done = ended.reduce((sum, state) => sum + (batch.counts[state] ?? 0), 0);
  return { done, fraction: batch.lines > 0 ? done / batch.lines : 0 };
}

/** The calls of run `runId` among the live tasks: pipeline calls have ids `<run id>:<step>…`. */
export function callsOfRun<T extends { id: string }>(tasks: readonly T[], runId: string): T[] {
  return tasks.filter((task) => task.id.startsWith(`${runId}:`));
}

/** Milliseconds for people: `850 ms`, `1.25 s`, `12.5 s`, `3 min 20 s`. */
export function formatMs(ms: number): string {
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${trim(s.toFixed(2))} s`;
  if (s < 60) return `${trim(s.toFixed(1))} s`;
  if (s < 3600) {
    const rest = Math.round(s % 60);
    return `${Math.floor(s / 60)} min${rest ? ` ${rest} s` : ''}`;
  }
  return `${trim((s / 3600).toFixed(1))} h`;
}

/** Whole numbers with thousands separators; large ones as k or M. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '∞';
  if (Math.abs(n) >= 10_000_000) return `${trim((n / 1_000_000).toFixed(1))}M`;
  if (Math.abs(n) >= 100_000) return `${Math.round(n / 1000)}k`;
  return Math.round(n).toLocaleString('en-US');
}

const trim = (text: string): string => (text.includes('.') ? text.replace(/\.?0+$/, '') : text);
const clamp = (n: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, n));
