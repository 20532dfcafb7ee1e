import { sleepOn, type Clock } from './clock.js';

interface Timer {
  at: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

/** Lets every promise callback that is already queued run to completion. */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that moves only when told. Timers fire in time order (ties in the
 * order they were set), and between two timers every pending promise callback
 * runs, so async code observes exactly the times it would in real life.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private order = 0;

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, callback: () => void): () => void {
    const timer: Timer = { at: this.current + Math.max(0, delayMs), order: this.order++, callback, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, delayMs, signal);
  }

  /** Number of timers still waiting to fire. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** The time of the next timer, or undefined when none is set. */
  nextTimerAt(): number | undefined {
    return this.nextTimer()?.at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.current + ms);
  }

  /** Moves time to `targetMs`, firing every timer due on the way. */
  async advanceTo(targetMs: number): Promise<void> {
    await this.fireUntil(targetMs);
    this.current = Math.max(this.current, targetMs);
  }

  /**
   * Fires timers one after another, jumping time to each, until none is left
   * (or `limitMs` of virtual time has passed). Returns the time reached.
   */
  async runAll(limitMs = Number.POSITIVE_INFINITY): Promise<number> {
    await this.fireUntil(this.current + limitMs);
    return this.current;
  }

  /** Fires every timer due at or before `endMs`, in order, letting promise callbacks run after each. */
  private async fireUntil(endMs: number): Promise<void> {
    await flushMicrotasks();
    for (;;) {
      const next = this.nextTimer();
      if (!next || next.at > endMs) break;
      this.fire(next);
      await flushMicrotasks();
    }
  }

  private nextTimer(): Timer | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let best: Timer | undefined;
    for (const t of this.timers) {
      if (!best || t.at < best.at || (t.at === best.at && t.order < best.order)) best = t;
    }
    return best;
  }

  private fire(timer: Timer): void {
    timer.cancelled = true;
    this.current = Math.max(this.current, timer.at);
    timer.callback();
  }
}
