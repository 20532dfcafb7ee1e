import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../contracts/manual-clock.js';
import { createEngine, type FanoutEngine } from '../../create-engine.js';
import { MockProvider } from '../../providers/mock/mock-provider.js';
import { BatchRegistry } from '../batches.js';
import { RunRegistry } from '../runs.js';
import { DashboardFeed } from './feed.js';
import type { DashboardMessage } from './message.js';

const ask = (tenant: string, content: string) => ({
  model: 'mock:m',
  tenant,
  messages: [{ role: 'user' as const, content }],
});

let engine: FanoutEngine;
let feed: DashboardFeed;

/** A feed on an engine whose model allows one call a second (burst one), on a manual clock from 10 s. */
function setUp(): { clock: ManualClock; batches: BatchRegistry } {
  const clock = new ManualClock(10_000);
  engine = createEngine({
    clock,
    cache: false,
    random: { next: () => 0 },
    providers: [new MockProvider({ models: { m: { latency: 100 } } })],
    models: { 'mock:m': { limits: { requestsPerMinute: 60, burstSeconds: 1, transitMs: 0 } } },
  });
  const batches = new BatchRegistry(engine, { maxLines: 100 });
  feed = new DashboardFeed({ engine, batches, runs: new RunRegistry(engine), models: ['mock:m'] });
  return { clock, batches };
}

afterEach(async () => {
  feed.close();
  await engine.close();
});

describe('DashboardFeed', () => {
  it('sends a tenant its figures at once and each second, with the limit key and its own waiting calls only', async () => {
    const { clock } = setUp();
    const first = engine.submit(ask('acme', 'one'));
    const second = engine.submit(ask('acme', 'two'));
    const third = engine.submit(ask('globex', 'three'));
    await clock.advance(0);
    const acme: DashboardMessage[] = [];
    const globex: DashboardMessage[] = [];
    const stopAcme = feed.follow('acme', (m) => acme.push(m));
    feed.follow('globex', (m) => globex.push(m));
    expect(acme).toHaveLength(1);
    const [limit] = acme[0]!.limits;
    expect(limit).toMatchObject({ key: 'mock:m', source: 'configured', inFlight: 1, maxConcurrent: null });
    expect(limit!.buckets).toEqual([
      { name: 'requestsPerMinute', limit: 60, windowMs: 60_000, capacity: 1, remaining: 0, resetMs: 1000 },
    ]);
    // Fair turns: globex's call is next on the key and waits on its limit; acme's second waits its turn behind it.
    expect(limit!.waiting).toEqual({ count: 0, next: [] });
    expect(acme[0]!.tasks.map((t) => [t.id, t.state])).toEqual([
      [second.id, 'queued'],
      [first.id, 'processing'],
    ]);
    expect(globex[0]!.tasks.map((t) => [t.id, t.state])).toEqual([[third.id, 'rate_limited']]);
    expect(globex[0]!.limits[0]!.waiting).toEqual({
      count: 1,
      next: [{ id: third.id, etaMs: 1000, reason: 'requestsPerMinute' }],
    });

    await clock.advance(1000);
    expect(acme).toHaveLength(2);
    expect(acme[1]!.at).toBe(11_000);
    // The first call ended at 10.1 s: one completion in second 10 of the last 300.
    expect(acme[1]!.seconds.start).toBe(11 - 299);
    expect(acme[1]!.seconds.completed.at(-2)).toBe(1);
    expect(acme[1]!.latency.model).toEqual([{ name: 'mock:m', count: 1, p50: 100, p90: 100, p99: 100 }]);

    stopAcme();
    await clock.advance(5000);
    expect(acme).toHaveLength(2);
    expect(globex).toHaveLength(7);
  });

  it('lists a batch with its lower bound under its key’s limit, from what its lines sent', async () => {
    const { clock, batches } = setUp();
    const lines = [1, 2, 3, 4].map((n) => JSON.stringify({ model: 'mock:m', prompt: `line ${n}` }));
    const batch = await batches.create('acme', lines);
    await clock.runAll(60_000);
    const [listed] = feed.snapshot('acme').batches;
    // Four requests at one a second with a burst of one: the last can start 3 s in, and takes 100 ms.
    expect(listed).toMatchObject({
      id: batch.id,
      state: 'completed',
      lines: 4,
      counts: { completed: 4 },
      wallMs: 3100,
      lowerBoundMs: 3100,
      bindingOn: 'mock:m requestsPerMinute',
      utilisation: 1,
    });
    expect(feed.snapshot('globex').batches).toEqual([]);
  });
});
