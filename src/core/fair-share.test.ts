import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { ManualClock } from '../contracts/manual-clock.js';
import type { EngineOptions } from './engine.js';
import type { TaskRequest } from '../contracts/types.js';

/** An engine on a manual clock whose mock model `m` answers in 100 ms, one call at a time unless told otherwise. */
function setup(options: Omit<EngineOptions, 'clock' | 'providers'> = {}) {
  const clock = new ManualClock();
  const engine = createEngine({
    cache: false,
    models: { 'mock:m': { limits: { maxConcurrent: 1 } } },
    ...options,
    clock,
    providers: [new MockProvider({ models: { m: { latency: 100 }, other: { latency: 100 } } })],
  });
  const starts: Array<{ tenant: string; label: string; at: number }> = [];
  engine.on('task-started', (e) => {
    const status = engine.status(e.taskId);
    starts.push({ tenant: status?.tenant as string, label: status?.label as string, at: e.at });
  });
  return { clock, engine, starts };
}

const ask = (tenant: string, label: string, extra: Partial<TaskRequest> = {}): TaskRequest => ({
  model: 'mock:m',
  tenant,
  label,
  messages: [{ role: 'user', content: label }],
  ...extra,
});

describe('tenants share a key fairly', () => {
  it('one tenant’s 100 queued calls delay another’s single call by one call’s turn', async () => {
    const { clock, engine, starts } = setup();
    const flood = Array.from({ length: 100 }, (_, i) => engine.submit(ask('flood', `f${i}`)));
    await clock.advance(50);
    const single = engine.submit(ask('interactive', 'mine'));
    await clock.advance(1000);
    // It goes as soon as the call in flight ends: it had no turn yet, the flood had one.
    expect(starts.slice(0, 4).map((s) => `${s.label}@${s.at}`)).toEqual(['f0@0', 'mine@100', 'f1@200', 'f2@300']);
    expect(single.status().timing.totalMs).toBe(150);
    for (const h of flood) h.cancel();
  });

  it('shares by weight: a tenant of weight 2 gets two turns to another’s one', async () => {
    const { clock, engine, starts } = setup({ tenants: { weights: { heavy: 2 } } });
    for (let i = 0; i < 6; i++) engine.submit(ask('heavy', `h${i}`));
    for (let i = 0; i < 6; i++) engine.submit(ask('light', `l${i}`));
    await clock.advance(900);
    expect(starts.map((s) => s.label)).toEqual(['h0', 'l0', 'h1', 'h2', 'l1', 'h3', 'h4', 'l2', 'h5', 'l3']);
  });

  it('a priority orders its own tenant’s work only: 1e9 does not jump another tenant', async () => {
    const { clock, engine, starts } = setup();
    for (let i = 0; i < 3; i++) engine.submit(ask('a', `a${i}`));
    engine.submit(ask('b', 'b0'));
    engine.submit(ask('a', 'urgent', { priority: 1e9 }));
    await clock.advance(500);
    // Submitted in one go: a's urgent task goes before a's others, but not before b's.
    expect(starts.map((s) => s.label)).toEqual(['b0', 'urgent', 'a0', 'a1', 'a2']);
    expect(() => engine.submit(ask('a', 'x', { priority: 1e300 }))).toThrow(
      'priority: Too big: expected number to be <=1000000000',
    );
  });

  it('caps a tenant’s calls in flight; another tenant starts at once', async () => {
    const { clock, engine, starts } = setup({ models: {}, tenants: { maxInFlight: 2 } });
    for (let i = 0; i < 6; i++) engine.submit(ask('a', `a${i}`));
    await clock.advance(10);
    engine.submit(ask('b', 'b0'));
    await clock.advance(0);
    expect(engine.inFlight).toBe(3);
    await clock.advance(300);
    expect(starts.map((s) => `${s.label}@${s.at}`)).toEqual([
      'a0@0',
      'a1@0',
      'b0@10',
      'a2@100',
      'a3@100',
      'a4@200',
      'a5@200',
    ]);
  });

  it('each tenant’s own limits pace it on every way of submitting, without holding back the others', async () => {
    const { clock, engine, starts } = setup({
      models: {},
      tenants: { limits: { requestsPerMinute: 60, burstSeconds: 1 } },
    });
    const paced = Array.from({ length: 3 }, (_, i) => engine.submit(ask('a', `a${i}`)));
    engine.submit(ask('b', 'b0'));
    await clock.advance(0);
    expect(paced[1]?.status()).toMatchObject({ state: 'rate_limited', eta: 1000 });
    await clock.advance(2500);
    expect(starts.map((s) => `${s.label}@${s.at}`)).toEqual(['a0@0', 'b0@0', 'a1@1000', 'a2@2000']);
  });

  it('with one tenant, order is priority then submission, as before', async () => {
    const { clock, engine, starts } = setup();
    engine.submit(ask('default', 'first'));
    engine.submit(ask('default', 'low', { priority: -1 }));
    engine.submit(ask('default', 'high', { priority: 5 }));
    await clock.advance(400);
    expect(starts.map((s) => s.label)).toEqual(['high', 'first', 'low']);
  });
});
