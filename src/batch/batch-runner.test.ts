import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { ManualClock } from '../contracts/manual-clock.js';
import { BatchRunner, type LineEnd } from './batch-runner.js';

function setup() {
  const clock = new ManualClock();
  const mock = new MockProvider({ models: { m: { latency: 100 } } });
  const engine = createEngine({ clock, providers: [mock], cache: false });
  return { clock, engine };
}

const line = (id: string) => JSON.stringify({ id, model: 'mock:m', prompt: `about ${id}` });

describe('the batch runner', () => {
  it('keeps at most `window` lines running, numbers lines by input and by place, and ends a bad line at once', async () => {
    const { clock, engine } = setup();
    const ends: LineEnd[] = [];
    let mostRunning = 0;
    const runner = new BatchRunner(engine, {
      onStart: () => (mostRunning = Math.max(mostRunning, runner.runningCount)),
      onEnd: (end) => ends.push(end),
    });
    const lines = [line('a'), '', '{bad', line('b'), line('c'), line('d'), line('e')];
    const reading = runner.read(lines, { window: 2 });
    // The bad line ends while it is read; a and b fill the window, so c waits for a call to end.
    await clock.advanceTo(0);
    expect(ends.map((e) => [e.kind, e.slot, e.line])).toEqual([['invalid', 1, 3]]);
    expect(runner.runningCount).toBe(2);
    await clock.advanceTo(300);
    await reading;
    await runner.settled();
    expect(mostRunning).toBe(2);
    expect(ends.map((e) => [e.kind, e.slot, e.line, e.customId])).toEqual([
      ['invalid', 1, 3, null],
      ['task', 0, 1, 'a'],
      ['task', 2, 4, 'b'],
      ['task', 3, 5, 'c'],
      ['task', 4, 6, 'd'],
      ['task', 5, 7, 'e'],
    ]);
    expect(ends.filter((e) => e.kind === 'task').map((e) => e.kind === 'task' && e.status?.state)).toEqual(
      Array(5).fill('completed'),
    );
    const bad = ends[0];
    expect(bad?.kind === 'invalid' && bad.output.error?.message).toMatch(/^line 3: /);
    await engine.close();
  });

  it('hands a line to `take` first, and submits it only when take leaves it', async () => {
    const { clock, engine } = setup();
    const ends: LineEnd[] = [];
    const runner = new BatchRunner(engine, { tenant: 'acme', onEnd: (end) => ends.push(end) });
    const taken: number[] = [];
    const reading = runner.read([line('a'), line('b'), line('c')], {
      take: (_text, place) => place.slot === 1 && taken.push(place.line) > 0,
    });
    await clock.advanceTo(100);
    await reading;
    await runner.settled();
    expect(taken).toEqual([2]);
    expect(ends.map((e) => e.line)).toEqual([1, 3]);
    expect(ends.map((e) => e.kind === 'task' && e.status?.tenant)).toEqual(['acme', 'acme']);
    await engine.close();
  });
});
