import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

describe('ManualClock', () => {
  it('fires timers in time order, ties in the order they were set, and only when reached', async () => {
    const clock = new ManualClock(100);
    const fired: string[] = [];
    clock.setTimer(50, () => fired.push(`b@${clock.now()}`));
    clock.setTimer(10, () => fired.push(`a@${clock.now()}`));
    clock.setTimer(50, () => fired.push(`c@${clock.now()}`));
    const cancel = clock.setTimer(20, () => fired.push('never'));
    cancel();
    await clock.advance(49);
    expect(fired).toEqual(['a@110']);
    await clock.advance(1);
    expect(fired).toEqual(['a@110', 'b@150', 'c@150']);
    expect(clock.now()).toBe(150);
  });

  it('lets promise chains run between timers', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    void (async () => {
      await clock.sleep(10);
      seen.push(clock.now());
      await clock.sleep(10);
      seen.push(clock.now());
    })();
    await clock.advance(100);
    expect(seen).toEqual([10, 20]);
  });

  it('rejects a sleep when its signal aborts', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(sleeping).rejects.toThrow('stop');
    expect(clock.pendingTimers).toBe(0);
  });
});
