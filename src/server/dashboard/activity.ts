import type { EngineEvent } from '../../core/events.js';
import type { TaskStatus } from '../../core/task.js';
import { percentiles } from '../../metrics/percentiles.js';
import type { DashboardMessage, LatencySummary, TaskLine } from './message.js';

/** Seconds of history the dashboard charts: five minutes, a slot a second. */
export const HISTORY_SECONDS = 300;
/** Tasks of one tenant the dashboard lists: the most recently submitted. */
export const RECENT_TASKS = 200;
/** Latency samples kept per series (a model, a step, a tool), the newest. */
export const LATENCY_SAMPLES = 500;
/** Series per kind (models, steps, tools) one tenant's figures name; more are counted under `(other)`. */
export const MAX_SERIES = 50;

/** What happened in one second of one tenant's work. */
export interface Slot {
  /** Epoch second. */
  second: number;
  completed: number;
  failed: number;
  tokens: number;
  /** Attempts a provider refused with 429. */
  refused429: number;
  retries: number;
  queuedMs: number;
  rateLimitedMs: number;
  providerMs: number;
}

export interface TenantFigures {
  /** The last `HISTORY_SECONDS` seconds, oldest first, one slot each (empty seconds included). */
  seconds: Slot[];
  latency: DashboardMessage['latency'];
  /** Newest first. */
  tasks: TaskLine[];
  /** Per limit key: this tenant's tasks held back by a limit or a retry wait now, and the first of them to go. */
  waiting: Record<string, { count: number; next: Array<{ id: string; eta: number; reason: string }> }>;
}

/** Waiting tasks named per key in the figures, soonest first. */
export const WAITING_SHOWN = 20;

type SeriesKind = 'model' | 'step' | 'tool';

/** The task id of a call a server's pipeline run made. */
const PIPELINE_CALL = /^run_[^:]+:/;

/** Latest samples of a series, with the time each was taken. */
interface Samples {
  values: number[];
  at: number[];
}

/**
 * What one tenant's work did lately, from the engine's events: per-second
 * counts, latency samples and the latest tasks. Every figure is bounded
 * (`HISTORY_SECONDS`, `LATENCY_SAMPLES`, `MAX_SERIES`, `RECENT_TASKS`), and
 * time comes only from the events and the caller.
 */
export class TenantActivity {
  private readonly slots: Slot[] = [];
  private readonly series: Record<SeriesKind, Map<string, Samples>> = {
    model: new Map(),
    step: new Map(),
    tool: new Map(),
  };
  private readonly tasks = new Map<string, TaskLine>();
  /** Tasks held back now, by id: their key, when they may go, and why. */
  private readonly held = new Map<string, { key: string; eta: number; reason: string }>();

  /** Takes in one event of this tenant's task; `status` is the task's status at its end. */
  record(event: EngineEvent, status?: TaskStatus): void {
    if (!('taskId' in event)) return;
    const line = this.lineOf(event.taskId, event.key, event.at, event.label);
    line.state = event.state;
    if (event.type === 'task-rate-limited' || event.type === 'task-retrying') {
      line.eta = event.eta;
      line.reason = event.reason;
      this.held.set(event.taskId, { key: event.key, eta: event.eta, reason: event.reason });
    } else if (event.type !== 'task-delta') {
      delete line.eta;
      delete line.reason;
      this.held.delete(event.taskId);
    }
    switch (event.type) {
      case 'task-started':
        line.startedAt = event.at;
        line.attempts = event.attempt;
        return;
      case 'attempt-failed':
        if (event.error.status === 429) this.slotAt(event.at).refused429++;
        return;
      case 'task-retrying':
        this.slotAt(event.at).retries++;
        return;
      case 'task-completed':
      case 'task-failed':
      case 'task-cancelled':
        this.ended(line, event.at, event.type === 'task-completed', status);
        return;
    }
  }

  /** Takes in a tool's time, from a pipeline run that ended. */
  recordTool(tool: string, ms: number, at: number): void {
    this.sample('tool', tool, ms, at);
  }

  /** The figures as of `now` (epoch ms). */
  figures(now: number): TenantFigures {
    const second = Math.floor(now / 1000);
    const first = second - HISTORY_SECONDS + 1;
    const bySecond = new Map(this.slots.map((slot) => [slot.second, slot]));
    const seconds: Slot[] = [];
    for (let s = first; s <= second; s++) seconds.push(bySecond.get(s) ?? emptySlot(s));
    const since = first * 1000;
    return {
      seconds,
      latency: {
        model: summaries(this.series.model, since),
        step: summaries(this.series.step, since),
        tool: summaries(this.series.tool, since),
      },
      tasks: [...this.tasks.values()].reverse(),
      waiting: this.waitingByKey(),
    };
  }

  private waitingByKey(): TenantFigures['waiting'] {
    const byKey: TenantFigures['waiting'] = {};
    for (const [id, { key, eta, reason }] of this.held) {
      const entry = (byKey[key] ??= { count: 0, next: [] });
      entry.count++;
      entry.next.push({ id, eta, reason });
    }
    for (const entry of Object.values(byKey)) {
      entry.next.sort((a, b) => a.eta - b.eta || a.id.localeCompare(b.id));
      entry.next.length = Math.min(entry.next.length, WAITING_SHOWN);
    }
    return byKey;
  }

  private lineOf(id: string, model: string, at: number, label: string | undefined): TaskLine {
    let line = this.tasks.get(id);
    if (!line) {
      line = { id, model, state: 'queued', submittedAt: at, attempts: 0, ...(label ? { label } : {}) };
      this.tasks.set(id, line);
      if (this.tasks.size > RECENT_TASKS) this.tasks.delete(this.tasks.keys().next().value as string);
    }
    return line;
  }

  private ended(line: TaskLine, at: number, completed: boolean, status: TaskStatus | undefined): void {
    line.endedAt = at;
    const slot = this.slotAt(at);
    if (completed) slot.completed++;
    else if (line.state === 'failed') slot.failed++;
    if (!status) return;
    line.model = status.model;
    line.attempts = status.attempts.length;
    line.queuedMs = status.timing.queuedMs;
    line.rateLimitedMs = status.timing.rateLimitedMs;
    line.providerMs = status.timing.providerMs;
    slot.queuedMs += status.timing.queuedMs;
    slot.rateLimitedMs += status.timing.rateLimitedMs;
    slot.providerMs += status.timing.providerMs;
    if (status.usage) {
      line.inputTokens = status.usage.inputTokens;
      line.outputTokens = status.usage.outputTokens;
      slot.tokens += status.usage.inputTokens + status.usage.outputTokens;
    }
    if (!completed) return;
    this.sample('model', line.model, status.timing.providerMs, at);
    // A pipeline run's call (`<run id>:<step>…`); a batch line's label is its custom id, not a step.
    if (line.label && PIPELINE_CALL.test(line.id))
      this.sample('step', line.label.replace(/\[\d+\]$/, ''), at - line.submittedAt, at);
  }

  private slotAt(at: number): Slot {
    const second = Math.floor(at / 1000);
    const last = this.slots.at(-1);
    if (last && last.second === second) return last;
    // Events come in time order; one from an earlier second (another clock) joins the latest slot.
    if (last && last.second > second) return last;
    const slot = emptySlot(second);
    this.slots.push(slot);
    while (this.slots.length > 0 && (this.slots[0] as Slot).second <= second - HISTORY_SECONDS) this.slots.shift();
    return slot;
  }

  private sample(kind: SeriesKind, name: string, ms: number, at: number): void {
    const map = this.series[kind];
    const key = map.has(name) || map.size < MAX_SERIES ? name : '(other)';
    let samples = map.get(key);
    if (!samples) map.set(key, (samples = { values: [], at: [] }));
    samples.values.push(ms);
    samples.at.push(at);
    if (samples.values.length > LATENCY_SAMPLES) {
      samples.values.shift();
      samples.at.shift();
    }
  }
}

function emptySlot(second: number): Slot {
  return {
    second,
    completed: 0,
    failed: 0,
    tokens: 0,
    refused429: 0,
    retries: 0,
    queuedMs: 0,
    rateLimitedMs: 0,
    providerMs: 0,
  };
}

/** p50/p90/p99 of each series over its samples taken since `since`, by name. */
function summaries(series: Map<string, Samples>, since: number): LatencySummary[] {
  const out: LatencySummary[] = [];
  for (const [name, samples] of series) {
    const recent = samples.values.filter((_, i) => (samples.at[i] as number) >= since);
    if (recent.length === 0) continue;
    const [p50, p90, p99] = percentiles(recent, [50, 90, 99]) as number[];
    out.push({ name, count: recent.length, p50: p50 as number, p90: p90 as number, p99: p99 as number });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
