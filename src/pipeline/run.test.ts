import { describe, expect, it } from 'vitest';
import { createEngine } from '../create-engine.js';
import { ProviderError } from '../contracts/errors.js';
import type { EngineOptions } from '../core/engine.js';
import { MockProvider, type MockProviderOptions } from '../providers/mock/mock-provider.js';
import type { Provider } from '../contracts/provider.js';
import { simulate } from '../sim/simulate.js';
import { ManualClock } from '../contracts/manual-clock.js';
import { loadPipelineFile } from './load.js';
import { combine, runPipeline, type RunPipelineOptions } from './run.js';
import { checkPipeline } from './spec.js';

/** A provider that answers each model with a fixed text, or fails for the models told to. */
function scripted(answers: Record<string, string | Error>, latencyMs = 100): Provider {
  return {
    name: 'fake',
    accounting: () => ({ rule: 'anthropic' }),
    async complete(call, context) {
      await context.clock.sleep(latencyMs, context.signal);
      const model = `fake:${call.model}`;
      const answer = answers[model];
      if (answer instanceof Error) throw answer;
      return {
        text: answer ?? `${model}: ${call.messages[0]?.content}`,
        usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
        finishReason: 'stop',
        model: call.model,
      };
    },
    stream() {
      throw new Error('not used');
    },
  };
}

async function runOn(
  spec: unknown,
  engineOptions: Omit<EngineOptions, 'clock'> & { mock?: MockProviderOptions } = {},
  options: RunPipelineOptions = {},
) {
  const clock = new ManualClock();
  const providers = Array.isArray(engineOptions.providers) ? engineOptions.providers : [];
  const engine = createEngine({
    random: { next: () => 0 },
    ...engineOptions,
    clock,
    providers: [new MockProvider(engineOptions.mock), ...providers],
  });
  const pending = runPipeline(engine, checkPipeline(spec, 'p'), options);
  await clock.runAll();
  return pending;
}

const fatal = (code: 'auth' | 'bad_request' = 'bad_request') =>
  new ProviderError(code, `${code} from upstream`, { provider: 'fake', status: 400 });

describe('engine.run', () => {
  it('runs a pipeline spec given as a TypeScript object', async () => {
    const clock = new ManualClock();
    const engine = createEngine({ clock });
    const pending = engine.run(
      { inputs: ['q'], steps: { a: { model: 'mock:m', prompt: 'say {{ inputs.q }}' } } },
      { q: 'hi' },
    );
    await clock.runAll();
    const run = await pending;
    expect(run.ok).toBe(true);
    expect(typeof run.steps.a?.output).toBe('string');
    expect(run.calls).toHaveLength(1);
  });
});

describe('expected latencies', () => {
  it('come from the engine’s calls so far when nothing else is known', async () => {
    const clock = new ManualClock();
    const engine = createEngine({
      clock,
      cache: false,
      providers: [new MockProvider({ models: { slow: { latency: 3000 }, fast: { latency: 100 } } })],
    });
    expect(engine.averageCallMs('mock:slow')).toBeUndefined();
    engine.submit({ model: 'mock:slow', messages: [{ role: 'user', content: 'a' }] });
    engine.submit({ model: 'mock:slow', messages: [{ role: 'user', content: 'b' }] });
    engine.submit({ model: 'mock:fast', messages: [{ role: 'user', content: 'c' }] });
    await clock.runAll();
    expect([engine.averageCallMs('mock:slow'), engine.averageCallMs('mock:fast')]).toEqual([3000, 100]);
  });
});

describe('the seed 000 table, through simulate', () => {
  it('reproduces 120 s → 45 s, 120 s → 35 s, 75 s → 45 s and 30 s → 30 s', async () => {
    const file = loadPipelineFile(new URL('../../examples/pr-review.yaml', import.meta.url).pathname);
    const rows: Array<[string, number, number, string]> = [];
    const costs: number[] = [];
    for (const pipeline of file.pipelines) {
      const s = await simulate(pipeline, { config: file.config });
      rows.push([pipeline.name, s.sequentialMs, s.run.wallMs, s.speedup.toFixed(1)]);
      const { inputTokens, outputTokens } = s.run.usage;
      costs.push(s.run.costUsd - (inputTokens * 3 + outputTokens * 15) / 1e6);
      expect(s.run.unpricedModels).toEqual([]);
    }
    // Every call priced at $3 in / $15 out per million tokens, from the file's config.
    for (const difference of costs) expect(Math.abs(difference)).toBeLessThan(1e-12);
    expect(rows).toEqual([
      ['three-agents', 120_000, 45_000, '2.7'],
      ['four-chunks', 120_000, 35_000, '3.4'],
      ['ensemble', 75_000, 45_000, '1.7'],
      ['single-agent', 30_000, 30_000, '1.0'],
    ]);
  });
});

describe('the seed 001 comparison, through simulate', () => {
  it('runs the four LLM tools in 15 s instead of 50 s, and the whole assistant in 18.5 s', async () => {
    const file = loadPipelineFile(new URL('../../examples/architecture-assistant.yaml', import.meta.url).pathname);
    const s = await simulate(file.pipelines[0]!, { config: file.config });
    expect(s.calls).toEqual({ sequentialMs: 50_000, wallMs: 15_000 });
    expect([s.sequentialMs, s.run.wallMs]).toEqual([55_000, 18_500]);
    expect(s.criticalPath).toEqual(['overview', 'diagram']);
    expect(s.run.tools.map((t) => [t.step, t.startedAt, t.endedAt])).toEqual([
      ['validate-template', 10_000, 11_500],
      ['diagram', 15_000, 18_500],
    ]);
  });
});

describe('simulate under binding limits', () => {
  it('waits for the limits in the one-after-another run too, so parallel is never slower than it', async () => {
    // Eleven 1 s calls (ten items, then their sum) on a model allowed 6 a minute, a burst of 1: one each 10 s however they are sent.
    const pipeline = checkPipeline(
      {
        steps: {
          each: {
            forEach: Array.from({ length: 10 }, (_, i) => `part ${i}`),
            model: 'mock:slow',
            prompt: 'Summarise {{ item }}',
          },
          total: { model: 'mock:slow', prompt: 'Sum up {{ steps.each.output }}' },
        },
      },
      'limited',
    );
    const config = {
      models: { 'mock:slow': { limits: { requestsPerMinute: 6, burstSeconds: 10, transitMs: 0 } } },
      providers: { mock: { models: { slow: { latency: 1_000 } } } },
    };
    const s = await simulate(pipeline, { config });
    // In parallel: calls at 0, 10, …, 100 s, the last ending at 101 s. One after another: the same waits, each call after the last.
    expect([s.run.wallMs, s.sequentialMs, s.calls.sequentialMs]).toEqual([101_000, 101_000, 101_000]);
    expect(s.speedup).toBe(1);
  });
});

describe('running a pipeline', () => {
  it('runs independent steps in parallel and a dependent one after them, with the outputs in its prompt', async () => {
    const run = await runOn(
      {
        inputs: ['diff'],
        steps: {
          a: { model: 'fake:a', prompt: 'A {{ inputs.diff }}' },
          b: { model: 'fake:b', prompt: 'B' },
          sum: { model: 'fake:s', prompt: '{{ steps.a.output }} + {{ steps.b.output }}' },
        },
      },
      { providers: [scripted({ 'fake:a': 'from a', 'fake:b': 'from b' })] },
      { inputs: { diff: 'd' } },
    );
    expect(run.ok).toBe(true);
    expect(run.calls.map((c) => [c.step, c.startedAt, c.endedAt])).toEqual([
      ['a', 0, 100],
      ['b', 0, 100],
      ['sum', 100, 200],
    ]);
    expect(run.steps.sum?.output).toBe('fake:s: from a + from b');
    expect(run.wallMs).toBe(200);
  });

  it('fans a step out over the chunks of a split, one call per chunk', async () => {
    const run = await runOn(
      {
        inputs: ['text'],
        steps: {
          parts: { split: { from: 'text', maxTokens: 3 } },
          each: { forEach: 'parts', model: 'fake:r', prompt: '#{{ index }}: {{ item }}' },
          all: { model: 'fake:j', prompt: '{{ steps.each.output }}' },
        },
      },
      { providers: [scripted({})] },
      { inputs: { text: 'one\ntwo\nthree\n' } },
    );
    expect(run.steps.parts?.output).toEqual(['one\n', 'two\n', 'three\n']);
    expect(run.steps.each?.output).toEqual(['fake:r: #0: one\n', 'fake:r: #1: two\n', 'fake:r: #2: three\n']);
    expect(run.calls.filter((c) => c.step === 'each').map((c) => [c.item, c.startedAt])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
    ]);
    expect(run.steps.all?.output).toBe('fake:j: fake:r: #0: one\n\n\nfake:r: #1: two\n\n\nfake:r: #2: three\n');
  });

  it('fans out over a list given in the step, and primes the prompt cache with the first item', async () => {
    const run = await runOn(
      {
        steps: {
          each: {
            forEach: ['alpha', 'beta', 'gamma'],
            primeCache: true,
            model: 'fake:r',
            system: 'a long shared prefix',
            prompt: '{{ item }}',
          },
        },
      },
      { providers: [scripted({})] },
    );
    expect(run.steps.each?.output).toEqual(['fake:r: alpha', 'fake:r: beta', 'fake:r: gamma']);
    // The first call alone; the others once it has ended and written the provider's cache.
    expect(run.calls.map((c) => [c.item, c.startedAt])).toEqual([
      [0, 0],
      [1, 100],
      [2, 100],
    ]);
  });

  it('lets a judge step combine an ensemble: later steps read its verdict', async () => {
    const run = await runOn(
      {
        steps: {
          review: { models: ['fake:a', 'fake:b'], combine: 'judge', prompt: 'x' },
          judge: { model: 'fake:j', prompt: 'pick one of: {{ steps.review.output }}' },
          report: { model: 'fake:w', prompt: 'verdict: {{ steps.review.output }}' },
        },
      },
      {
        providers: [scripted({ 'fake:a': 'approve', 'fake:b': 'reject', 'fake:j': 'reject, because of the retries' })],
      },
    );
    expect(run.steps.judge?.output).toBe('reject, because of the retries');
    expect(run.steps.report?.output).toBe('fake:w: verdict: reject, because of the retries');
    expect(run.calls.map((c) => [c.step, c.startedAt])).toEqual([
      ['review', 0],
      ['review', 0],
      ['judge', 100],
      ['report', 200],
    ]);
    expect(() =>
      checkPipeline({
        steps: {
          r: { models: ['fake:a', 'fake:b'], combine: 'j', prompt: 'x' },
          j: { model: 'fake:j', prompt: 'no reference' },
        },
      }),
    ).toThrow('steps.r.combine: the judge step "j" must be an LLM step that reads {{ steps.r.output }}');
  });

  it('combines an ensemble by concatenation or by vote', async () => {
    const answers = { 'fake:a': 'approve', 'fake:b': 'reject', 'fake:c': ' reject ' };
    const run = await runOn(
      {
        steps: {
          both: { models: ['fake:a', 'fake:b'], prompt: 'x' },
          vote: { models: ['fake:a', 'fake:b', 'fake:c'], combine: 'vote', prompt: 'x' },
        },
      },
      { providers: [scripted(answers)] },
    );
    expect(run.steps.both?.output).toBe('[fake:a]\napprove\n\n[fake:b]\nreject');
    expect(run.steps.vote?.output).toBe('reject');
    expect(combine('vote', ['x', 'y'], ['first', 'second'])).toBe('first');
  });

  it('onError fail: the pipeline fails, later steps are skipped and calls in flight are cancelled', async () => {
    const run = await runOn(
      {
        steps: {
          bad: { model: 'fake:bad', prompt: 'x' },
          slow: { model: 'mock:slow', prompt: 'x' },
          after: { model: 'fake:ok', prompt: '{{ steps.bad.output }}' },
        },
      },
      { providers: [scripted({ 'fake:bad': fatal() })], mock: { models: { slow: { latency: 5000 } } } },
    );
    expect(run.ok).toBe(false);
    expect([run.steps.bad?.state, run.steps.slow?.state, run.steps.after?.state]).toEqual([
      'failed',
      'failed',
      'skipped',
    ]);
    expect(run.calls.find((c) => c.step === 'slow')).toMatchObject({ state: 'cancelled', endedAt: 100 });
    expect(run.calls.some((c) => c.step === 'after')).toBe(false);
  });

  it('onError continue: the next step sees the failure spelled out, never an empty string', async () => {
    const run = await runOn(
      {
        steps: {
          bad: { model: 'fake:bad', prompt: 'x', onError: 'continue' },
          after: { model: 'fake:ok', prompt: 'got: {{ steps.bad.output }}' },
        },
      },
      { providers: [scripted({ 'fake:bad': fatal() })] },
    );
    expect(run.ok).toBe(true);
    expect(run.steps.after?.output).toBe('fake:ok: got: [step bad failed: bad_request: bad_request from upstream]');
  });

  it('onError fallback: the call is made again on the fallback model', async () => {
    const run = await runOn(
      { steps: { review: { model: 'fake:primary', prompt: 'x', onError: { fallback: 'fake:backup' } } } },
      { providers: [scripted({ 'fake:primary': fatal('auth'), 'fake:backup': 'backup answer' })] },
    );
    expect(run.steps.review).toMatchObject({ state: 'completed', output: 'backup answer' });
    expect(run.calls.map((c) => [c.model, c.state, c.startedAt])).toEqual([
      ['fake:primary', 'failed', 0],
      ['fake:backup', 'completed', 100],
    ]);
  });

  it('sends the calls on the longest remaining path first when a limit binds', async () => {
    // One request per second on the key all steps share. "chain" leads to a long step; "quick" and "side" lead nowhere.
    const run = await runOn(
      {
        steps: {
          quick: { model: 'mock:m', prompt: 'quick', expectedMs: 100 },
          side: { model: 'mock:m', prompt: 'side', expectedMs: 100 },
          chain: { model: 'mock:m', prompt: 'chain', expectedMs: 100 },
          long: { model: 'mock:m', prompt: 'long {{ steps.chain.output }}', expectedMs: 10_000 },
        },
      },
      {
        models: { 'mock:m': { limits: { requestsPerMinute: 60, burstSeconds: 1, transitMs: 0 } } },
        mock: { defaults: { latency: 100 } },
      },
    );
    const started = Object.fromEntries(run.calls.map((c) => [c.step, c.startedAt]));
    expect(started).toEqual({ chain: 0, long: 1000, quick: 2000, side: 3000 });
    // Held back 3 s in all: waiting its turn behind the head of the queue, then at the head for its permit.
    expect(run.calls.find((c) => c.step === 'side')).toMatchObject({ queuedMs: 2000, rateLimitedMs: 1000 });
  });
});
