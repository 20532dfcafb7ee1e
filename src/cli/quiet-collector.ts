import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TaskStore } from '../contracts/task-store.js';
import type { FanoutEngine } from '../create-engine.js';

/** How long the engine must have had nothing to do, after some work, before memory is given back. */
export const QUIET_MS = 10_000;
const LOOK_EVERY_MS = 5_000;

/**
 * Gives back the memory a burst of work grew, once the burst is over. A
 * server that goes quiet after a flood would otherwise keep it for as long as
 * it stays quiet: V8 collects garbage only as a process allocates, and
 * SQLite keeps its page cache full. Once `engine` has had nothing pending or
 * in flight for `QUIET_MS` after some work, `release` runs once (`fanout
 * serve` and `fanout worker` empty their store's page cache, then collect the
 * heap: `givingBack`). Returns what stops it.
 */
export function releaseWhenQuiet(engine: FanoutEngine, release: () => void): () => void {
  let worked = false;
  let quietSince: number | undefined;
  const stopListening = engine.on('task-queued', () => (worked = true));
  const look = (): void => {
    const now = engine.clock.now();
    if (engine.pendingCount > 0 || engine.inFlight > 0) {
      worked = true;
      quietSince = undefined;
    } else if (worked) {
      quietSince ??= now;
      if (now - quietSince >= QUIET_MS) {
        release();
        worked = false;
        quietSince = undefined;
      }
    }
    stopTimer = engine.clock.setTimer(LOOK_EVERY_MS, look);
  };
  let stopTimer = engine.clock.setTimer(LOOK_EVERY_MS, look);
  return () => {
    stopTimer();
    stopListening();
  };
}

/** The store's caches emptied, then V8's full collection (`gc`, made available if the process was not started with --expose-gc). */
export function givingBack(store: TaskStore | undefined): () => void {
  const collect = fullCollection();
  return () => {
    store?.trimMemory?.();
    collect?.();
  };
}

function fullCollection(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
