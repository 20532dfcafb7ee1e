import type { Clock } from '../contracts/clock.js';
import type { CallTimeouts } from '../contracts/provider.js';
import { FanoutError } from '../contracts/errors.js';

export const DEFAULT_CALL_TIMEOUTS: Readonly<Required<CallTimeouts>> = Object.freeze({
  firstByteMs: 60_000,
  idleMs: 60_000,
  perOutputTokenMs: 50,
});

/** How often calls in flight are looked at: a limit is noticed within this of passing. */
export const WATCH_EVERY_MS = 1_000;

/** One attempt as the watchdog follows it. */
export interface WatchedCall {
  /** When the call was sent. */
  readonly startedAt: number;
  /** When the provider last showed a sign of the answer; undefined before the first. */
  readonly seenAt: number | undefined;
  /** Ms from `startedAt` the first sign may take. */
  readonly firstByteLimitMs: number;
  /** Ms between signs once the answer has begun. */
  readonly idleLimitMs: number;
  abort(reason: unknown): void;
}

/**
 * Watches every call in flight with one timer that ticks each second while
 * any call is out (not a timer per call: a call costs a set insert and
 * delete). A call past its limit is aborted with a retryable `timeout` that
 * names the limit; `onTick` lets the engine look at the calls too.
 */
export class CallWatchdog<T extends WatchedCall> {
  private readonly calls = new Set<T>();
  private cancelTimer?: () => void;

  constructor(
    private readonly clock: Clock,
    private readonly onTick?: (calls: ReadonlySet<T>, now: number) => void,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  add(call: T): void {
    this.calls.add(call);
    if (!this.cancelTimer) this.arm();
  }

  delete(call: T): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.stop();
  }

  /** The earliest `startedAt` of the calls in flight. */
  oldestStartedAt(): number | undefined {
    let oldest: number | undefined;
    for (const call of this.calls) if (oldest === undefined || call.startedAt < oldest) oldest = call.startedAt;
    return oldest;
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private arm(): void {
    this.cancelTimer = this.clock.setTimer(WATCH_EVERY_MS, () => {
      this.cancelTimer = undefined;
      this.tick(this.clock.now());
      if (this.calls.size > 0 && !this.cancelTimer) this.arm();
    });
  }

  private tick(now: number): void {
    for (const call of this.calls) {
      const late = lateness(call, now);
      if (late) call.abort(late);
    }
    this.onTick?.(this.calls, now);
  }
}

/** The timeout error for a call past one of its limits at `now`, else undefined. */
export function lateness(call: WatchedCall, now: number): FanoutError | undefined {
  if (call.seenAt === undefined) {
    if (now - call.startedAt < call.firstByteLimitMs) return undefined;
    return new FanoutError(
      'timeout',
      `no answer began within ${seconds(call.firstByteLimitMs)} of sending the call (first-byte limit)`,
      { retryable: true },
    );
  }
  if (now - call.seenAt < call.idleLimitMs) return undefined;
  return new FanoutError('timeout', `the answer stopped for ${seconds(call.idleLimitMs)} (idle-stream limit)`, {
    retryable: true,
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
