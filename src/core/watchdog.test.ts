import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import type { CallContext, ModelCall, Provider, StreamEvent } from '../contracts/provider.js';
import { ManualClock } from '../contracts/manual-clock.js';
import type { EngineOptions } from './engine.js';
import type { RetryError } from '../contracts/errors.js';
import type { ModelResult } from '../contracts/types.js';

const USAGE = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };

function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
  );
}

/**
 * A provider whose calls follow a script: `complete` waits `answerMs` (or
 * hangs when it is undefined); `stream` sends its headers, then one token
 * after each gap of `gapsMs`, then hangs when `hangsAfter` is set.
 */
function scripted(options: {
  name?: string;
  answerMs?: (call: number) => number | undefined | Error;
  gapsMs?: number[];
  hangsAfter?: boolean;
  reportsLimits?: boolean;
  timeouts?: Provider['timeouts'];
}) {
  const starts: number[] = [];
  const provider: Provider = {
    name: options.name ?? 'up',
    timeouts: options.timeouts,
    reportsLimits: () => options.reportsLimits ?? false,
    accounting: () => ({ rule: 'openai' }),
    async complete(call: ModelCall, context: CallContext): Promise<ModelResult> {
      starts.push(context.clock.now());
      const answer = options.answerMs?.(starts.length);
      if (answer instanceof Error) throw answer;
      if (answer === undefined) await hang(context.signal);
      else await context.clock.sleep(answer, context.signal);
      return { text: 'ok', usage: USAGE, finishReason: 'stop', model: call.model };
    },
    async *stream(call: ModelCall, context: CallContext): AsyncIterable<StreamEvent> {
      starts.push(context.clock.now());
      context.alive?.();
      for (const gap of options.gapsMs ?? []) {
        await context.clock.sleep(gap, context.signal);
        yield { type: 'delta', text: 'x' };
      }
      if (options.hangsAfter) await hang(context.signal);
      yield { type: 'done', result: { text: 'x', usage: USAGE, finishReason: 'stop', model: call.model } };
    },
  };
  return { provider, starts };
}

function engineWith(provider: Provider, options: Omit<EngineOptions, 'clock' | 'providers'> = {}) {
  const clock = new ManualClock();
  const engine = createEngine({ ...options, clock, providers: [provider], cache: false });
  return { clock, engine };
}

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user' as const, content: 'hi' }],
  maxAttempts: 1,
  ...extra,
});

describe('a call that never answers', () => {
  it('ends at the first-byte limit: 60 s plus 50 ms per max token for a non-streamed call, by default', async () => {
    const mock = new MockProvider({ models: { dead: { faults: { timeout: 1 } } } });
    const clock = new ManualClock();
    const engine = createEngine({ clock, providers: [mock], cache: false });
    const handle = engine.submit(ask('mock:dead', { maxTokens: 100 }));
    await clock.runAll();
    const error = (await handle.result().catch((e: unknown) => e)) as RetryError;
    expect(error).toMatchObject({ code: 'timeout', retryable: true });
    expect(error.message).toBe('no answer began within 65 s of sending the call (first-byte limit)');
    expect(handle.status().endedAt).toBe(65_000);
  });

  it('retries a hung attempt like any timeout, each attempt getting its own limit', async () => {
    const { provider, starts } = scripted({ answerMs: (n) => (n === 1 ? undefined : 2_000) });
    const { clock, engine } = engineWith(provider, {
      callTimeouts: { firstByteMs: 10_000, perOutputTokenMs: 0 },
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
    });
    const handle = engine.submit(ask('up:m', { maxAttempts: 2 }));
    await clock.runAll();
    expect(starts).toEqual([0, 10_000]);
    expect(handle.status()).toMatchObject({ state: 'completed', endedAt: 12_000 });
    expect(handle.status().attempts.map((a) => [a.endedAt, a.error?.code])).toEqual([
      [10_000, 'timeout'],
      [12_000, undefined],
    ]);
  });

  it('uses the provider’s own timeouts over the engine’s', async () => {
    const { provider } = scripted({ timeouts: { firstByteMs: 5_000, perOutputTokenMs: 0 } });
    const { clock, engine } = engineWith(provider, { callTimeouts: { firstByteMs: 20_000, perOutputTokenMs: 0 } });
    const handle = engine.submit(ask('up:m'));
    await clock.runAll();
    expect(handle.status()).toMatchObject({ state: 'failed', endedAt: 5_000 });
  });

  it('refuses a timeout that is not a whole number of ms, naming it', () => {
    const { provider } = scripted({ timeouts: { idleMs: 0 } });
    expect(() => createEngine({ providers: [provider] })).toThrow(
      'providers.up.timeouts.idleMs: expected a whole number ≥ 1, received 0',
    );
    expect(() => createEngine({ callTimeouts: { firstByteMs: -1 } })).toThrow(
      'callTimeouts.firstByteMs: expected a whole number ≥ 1, received -1',
    );
  });
});

describe('a stream', () => {
  it('ends when it stops for the idle limit, counted from its last event', async () => {
    const { provider } = scripted({ gapsMs: [10_000, 10_000], hangsAfter: true });
    const { clock, engine } = engineWith(provider, { callTimeouts: { idleMs: 30_000 } });
    const handle = engine.submit(ask('up:m', { stream: true }));
    await clock.runAll();
    const error = (await handle.result().catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('the answer stopped for 30 s (idle-stream limit)');
    expect(handle.status().endedAt).toBe(50_000);
  });

  it('may take far longer than either limit while it keeps sending', async () => {
    const { provider } = scripted({ gapsMs: [25_000, 25_000, 25_000, 25_000, 25_000] });
    const { clock, engine } = engineWith(provider, { callTimeouts: { firstByteMs: 30_000, idleMs: 30_000 } });
    const handle = engine.submit(ask('up:m', { stream: true }));
    await clock.runAll();
    expect(handle.status()).toMatchObject({ state: 'completed', endedAt: 125_000 });
  });
});

describe('a model of unknown limits', () => {
  it('sends the rest a few at a time when its first call has hung for 15 s', async () => {
    // Call 1 hangs; every other call answers in 1 s. The provider reports limits, so fanout asks once first.
    const { provider, starts } = scripted({ reportsLimits: true, answerMs: (n) => (n === 1 ? undefined : 1_000) });
    const { clock, engine } = engineWith(provider);
    const handles = Array.from({ length: 9 }, () => engine.submit(ask('up:m')));
    await clock.advanceTo(14_999);
    expect(starts).toEqual([0]);
    await clock.advanceTo(15_000);
    expect(starts).toEqual([0, 15_000, 15_000, 15_000]);
    await clock.advanceTo(16_000);
    // Three successes at 4 allowed: one more slot each window, as after a 429.
    expect(starts.slice(4)).toEqual([16_000, 16_000, 16_000]);
    await clock.runAll();
    expect(handles.slice(1).map((h) => h.status().state)).toEqual(new Array(8).fill('completed'));
  });

  it('sends the rest a few at a time at once when its first call fails', async () => {
    const refused = Object.assign(new Error('connection reset'), {});
    const { provider, starts } = scripted({ reportsLimits: true, answerMs: (n) => (n === 1 ? refused : 1_000) });
    const { clock, engine } = engineWith(provider);
    const handles = Array.from({ length: 6 }, () => engine.submit(ask('up:m')));
    await clock.advanceTo(0);
    expect(starts).toEqual([0, 0, 0, 0, 0]);
    await clock.runAll();
    expect(handles.map((h) => h.status().state)).toEqual([
      'failed',
      'completed',
      'completed',
      'completed',
      'completed',
      'completed',
    ]);
  });
});
