import type { FanoutEngine } from '../../create-engine.js';
import type { EngineEvent, EngineEventType } from '../../core/events.js';
import { isEnd } from '../../core/events.js';
import type { PipelineRun } from '../../pipeline/run.js';
import { lowerBound, type KeyWork } from '../../metrics/lower-bound.js';
import type { BatchListing, BatchRegistry } from '../batches.js';
import type { RunRegistry } from '../runs.js';
import { TenantActivity, type Slot, type TenantFigures } from './activity.js';
import type { BatchLine, DashboardMessage, LimitLine } from './message.js';

/** How often a followed dashboard is sent what changed: once a second. */
export const DASHBOARD_TICK_MS = 1000;
/** The events the figures are made of. */
const RECORDED: readonly EngineEventType[] = [
  'task-queued',
  'task-rate-limited',
  'task-started',
  'attempt-failed',
  'task-retrying',
  'task-completed',
  'task-failed',
  'task-cancelled',
];
/** Tenants whose activity one server keeps; the oldest seen is forgotten beyond it. */
const MAX_TENANTS = 1000;

export interface DashboardFeedOptions {
  engine: FanoutEngine;
  batches: BatchRegistry;
  runs: RunRegistry;
  /** The models the config names. */
  models: readonly string[];
}

/**
 * The dashboard's live figures: one listener on the engine's events, kept
 * per tenant, and a snapshot a second sent to each socket following a
 * tenant's dashboard (none while nobody follows).
 */
export class DashboardFeed {
  private readonly tenants = new Map<string, TenantActivity>();
  /** The tenant of each task not yet ended, so that each event is charged without a copy of its status. */
  private readonly tenantOf = new Map<string, string>();
  private readonly followers = new Map<string, Set<(message: DashboardMessage) => void>>();
  private readonly configured: Set<string>;
  private readonly stopListening: () => void;
  private stopTimer: (() => void) | undefined;

  constructor(private readonly options: DashboardFeedOptions) {
    this.configured = new Set(options.models);
    // Every task event but the stream's deltas, which would cost a call to each token and change no figure.
    const stops = RECORDED.map((type) => options.engine.on(type, (event: EngineEvent) => this.record(event)));
    this.stopListening = () => stops.forEach((stop) => stop());
  }

  /** Sends `send` its tenant's snapshot now and every tick until the returned function is called. */
  follow(tenant: string, send: (message: DashboardMessage) => void): () => void {
    const set = this.followers.get(tenant) ?? new Set();
    this.followers.set(tenant, set);
    set.add(send);
    send(this.snapshot(tenant));
    this.stopTimer ??= this.tickEvery();
    return () => {
      set.delete(send);
      if (set.size === 0) this.followers.delete(tenant);
      if (this.followers.size === 0) {
        this.stopTimer?.();
        this.stopTimer = undefined;
      }
    };
  }

  /** Takes in the tool times of a pipeline run that ended. */
  observeRun(tenant: string, run: PipelineRun): void {
    const activity = this.activity(tenant);
    for (const tool of run.tools)
      activity.recordTool(tool.tool ?? tool.step, tool.endedAt - tool.startedAt, tool.endedAt);
  }

  close(): void {
    this.stopListening();
    this.stopTimer?.();
    this.followers.clear();
  }

  snapshot(tenant: string): DashboardMessage {
    const now = this.options.engine.clock.now();
    const figures = this.activity(tenant).figures(now);
    return {
      type: 'dashboard',
      at: now,
      limits: this.limits(figures.waiting, now),
      seconds: columns(figures.seconds),
      latency: figures.latency,
      tasks: figures.tasks,
      batches: this.options.batches.list(tenant).map((batch) => this.boundOf(batch, now)),
      runs: this.options.runs.list(tenant),
    };
  }

  /** The batch's lower bound under the limits of its keys, from what its ended lines sent. */
  private boundOf({ work, ...batch }: BatchListing, now: number): BatchLine {
    const end = batch.state === 'running' ? now : (work?.endedAt ?? now);
    const wallMs = Math.max(0, end - batch.createdAt);
    if (!work || work.keys.size === 0) return { ...batch, wallMs };
    const limiter = this.options.engine.limiter;
    const keys: KeyWork[] = [...work.keys].map(([key, done]) => ({
      key,
      charged: done.charged,
      providerMs: done.providerMs,
      shortestCallMs: Number.isFinite(done.shortestCallMs) ? done.shortestCallMs : 0,
      buckets: limiter.buckets(key).map(({ charged: _, ...bucket }) => bucket),
      maxConcurrent: limiter.maxConcurrent(key),
    }));
    const bound = lowerBound(keys, this.options.engine.concurrency, work.longestCallMs);
    return {
      ...batch,
      wallMs,
      lowerBoundMs: Math.round(bound.ms),
      bindingOn: bound.bindingOn,
      utilisation: wallMs > 0 ? bound.ms / wallMs : 1,
    };
  }

  private tickEvery(): () => void {
    const clock = this.options.engine.clock;
    const tick = (): void => {
      for (const [tenant, sends] of this.followers) {
        const message = this.snapshot(tenant);
        for (const send of sends) send(message);
      }
      stop = clock.setTimer(DASHBOARD_TICK_MS, tick);
    };
    let stop = clock.setTimer(DASHBOARD_TICK_MS, tick);
    return () => stop();
  }

  private record(event: EngineEvent): void {
    if (!('taskId' in event)) return;
    let tenant = this.tenantOf.get(event.taskId);
    const ended = isEnd(event);
    const status = tenant === undefined || ended ? this.options.engine.status(event.taskId) : undefined;
    tenant ??= status?.tenant ?? 'default';
    if (ended) this.tenantOf.delete(event.taskId);
    else this.tenantOf.set(event.taskId, tenant);
    this.activity(tenant).record(event, status);
  }

  private activity(tenant: string): TenantActivity {
    let activity = this.tenants.get(tenant);
    if (!activity) {
      activity = new TenantActivity();
      this.tenants.set(tenant, activity);
      if (this.tenants.size > MAX_TENANTS) this.tenants.delete(this.tenants.keys().next().value as string);
    }
    return activity;
  }

  private limits(waiting: TenantFigures['waiting'], now: number): LimitLine[] {
    const limiter = this.options.engine.limiter;
    return limiter.keyNames().map((key) => {
      const views = new Map(limiter.buckets(key).map((view) => [view.name, view]));
      const levels = limiter.levels(key, now);
      const stats = limiter.stats(key);
      const max = limiter.maxConcurrent(key);
      const held = waiting[key] ?? { count: 0, next: [] };
      return {
        key,
        source: limiter.isProbing(key)
          ? 'probing'
          : levels.length === 0 && !Number.isFinite(max)
            ? 'none'
            : this.configured.has(key)
              ? 'configured'
              : 'learned',
        buckets: levels.map((level) => ({ ...level, windowMs: views.get(level.name)?.windowMs ?? 60_000 })),
        inFlight: stats?.inFlight ?? 0,
        maxConcurrent: Number.isFinite(max) ? max : null,
        cooldownMs: Math.max(0, (stats?.cooldownUntil ?? 0) - now),
        waiting: {
          count: held.count,
          next: held.next.map((wait) => ({ id: wait.id, etaMs: Math.max(0, wait.eta - now), reason: wait.reason })),
        },
      };
    });
  }
}

/** Slots as one array per figure. */
function columns(slots: readonly Slot[]): DashboardMessage['seconds'] {
  const pick = (field: Exclude<keyof Slot, 'second'>): number[] => slots.map((slot) => slot[field]);
  return {
    start: slots[0]?.second ?? 0,
    completed: pick('completed'),
    failed: pick('failed'),
    tokens: pick('tokens'),
    refused429: pick('refused429'),
    retries: pick('retries'),
    queuedMs: pick('queuedMs'),
    rateLimitedMs: pick('rateLimitedMs'),
    providerMs: pick('providerMs'),
  };
}
