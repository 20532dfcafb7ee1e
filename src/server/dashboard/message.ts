/**
 * What the dashboard page receives over the WebSocket: the one definition
 * the server writes and the page (dashboard/src) reads. It imports nothing,
 * so the page's build can read it too.
 */

/** What a followed dashboard receives each tick: only its own tenant's work, and the limits every tenant shares. */
export interface DashboardMessage {
  type: 'dashboard';
  /** Server time, epoch ms. */
  at: number;
  limits: LimitLine[];
  seconds: SecondColumns;
  /** Per model (provider time), per pipeline step (submission to end) and per tool, over the kept samples. */
  latency: { model: LatencySummary[]; step: LatencySummary[]; tool: LatencySummary[] };
  /** The tenant's latest tasks, newest first. */
  tasks: TaskLine[];
  batches: BatchLine[];
  runs: RunLine[];
}

/** One limit key: each bucket's level, where its limits came from, what waits on it. */
export interface LimitLine {
  key: string;
  /** `configured`: a model of the config; `learned`: from the provider's headers; `probing`: one call at a time until they come; `none`: no limits. */
  source: 'configured' | 'learned' | 'probing' | 'none';
  buckets: BucketLevelLine[];
  inFlight: number;
  /** Calls allowed in flight (null: no bound). */
  maxConcurrent: number | null;
  /** Milliseconds left of a cooldown a provider asked for. */
  cooldownMs: number;
  /** This tenant's tasks held back on the key now, and the first to go. */
  waiting: { count: number; next: Array<{ id: string; etaMs: number; reason: string }> };
}

export interface BucketLevelLine {
  /** requestsPerMinute, requestsPerDay, tokensPerMinute, inputTokensPerMinute or outputTokensPerMinute. */
  name: string;
  limit: number;
  windowMs: number;
  capacity: number;
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

/** Per second, oldest first, from `start` (epoch second): one column per figure. */
export interface SecondColumns {
  start: number;
  completed: number[];
  failed: number[];
  /** Input and output tokens of the calls that ended. */
  tokens: number[];
  /** Attempts a provider refused with 429. */
  refused429: number[];
  retries: number[];
  /** Of the calls that ended: time queued for a turn, held by a limit or a retry, and at the provider. */
  queuedMs: number[];
  rateLimitedMs: number[];
  providerMs: number[];
}

/** One task as the dashboard's table lists it. */
export interface TaskLine {
  id: string;
  model: string;
  /** submitted, queued, rate_limited, processing, completed, failed or cancelled. */
  state: string;
  /** The pipeline step (`step` or `step[i]`) of a pipeline's call, or a batch line's custom id. */
  label?: string;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  attempts: number;
  queuedMs?: number;
  rateLimitedMs?: number;
  providerMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  /** While held back: when it may go, and what holds it. */
  eta?: number;
  reason?: string;
}

export interface LatencySummary {
  name: string;
  count: number;
  p50: number;
  p90: number;
  p99: number;
}

/** A batch: its counts per state, and how its wall time compares with what its limits allowed. */
export interface BatchLine {
  id: string;
  state: 'running' | 'completed' | 'cancelled';
  lines: number;
  counts: Partial<Record<string, number>>;
  createdAt: number;
  /** From its creation to its last line's end (or to now, while it goes on). */
  wallMs: number;
  /** No schedule could have done the work its lines sent so far sooner (as `fanout batch`'s summary says). */
  lowerBoundMs?: number;
  bindingOn?: string;
  /** lowerBoundMs ÷ wallMs: 1 means the batch went as fast as its limits allow. */
  utilisation?: number;
}

/** A pipeline run and its steps' states (`pending` until a step ends). */
export interface RunLine {
  id: string;
  pipeline: string;
  state: 'running' | 'completed' | 'failed' | 'cancelled';
  createdAt: number;
  wallMs?: number;
  steps: Record<string, string>;
}
