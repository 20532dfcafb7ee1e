/**
 * The only source of time in fanout. Everything that waits, measures or
 * schedules is handed a `Clock`, so tests run on `ManualClock` with exact
 * values and `fanout simulate` runs whole pipelines in virtual time.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch; monotonic (never goes backwards). */
  now(): number;
  /**
   * Calls `callback` once, `delayMs` milliseconds from now (0 or less: as soon
   * as possible, after the current synchronous work). Returns a function that
   * cancels the call if it has not happened yet; calling it twice is harmless.
   */
  setTimer(delayMs: number, callback: () => void): () => void;
  /**
   * Resolves after `delayMs`. Rejects with the signal's reason if `signal`
   * aborts first, and at once if it is already aborted.
   */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

/** Builds `sleep` from `setTimer`, so every clock gets identical abort semantics. */
export function sleepOn(clock: Pick<Clock, 'setTimer'>, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(delayMs, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Real time: a monotonic clock anchored to the epoch at process start. */
export class SystemClock implements Clock {
  private readonly origin = performance.timeOrigin;

  now(): number {
    return this.origin + performance.now();
  }

  setTimer(delayMs: number, callback: () => void): () => void {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return () => clearTimeout(handle);
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, delayMs, signal);
  }
}

/** Wall-clock date for display (file names, log lines); not for measuring. */
export function currentDate(clock: Clock): Date {
  return new Date(clock.now());
}
