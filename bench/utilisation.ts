import { setMaxListeners } from 'node:events';
import OpenAI from 'openai';
import {
  AnthropicProvider,
  createEngine,
  MockProvider,
  OpenAiCompatibleProvider,
  ProviderError,
  SystemClock,
  type LatencyProfile,
  type LimitSpec,
  type MockModelOptions,
} from '../dist/index.js';
import { startLimitedUpstream } from '../test/fakes/limited-upstream.js';
import { startAnthropicUpstream } from './anthropic-upstream.js';
import { lowerBound } from '../dist/metrics/lower-bound.js';
import { nowMs } from './stats.js';

/**
 * W-known: limits known, an upstream (the mock) that enforces them as
 * continuously refilled buckets with a 1-second burst. fanout against a naive
 * client that caps concurrency and retries 429s after retry-after (p-limit
 * style), on the same upstream settings, in real time. Utilisation is the
 * lower bound for the work (computed from the limits and the shortest call)
 * over the wall time; 429s are counted by the upstream.
 *
 * W-tokens: output tokens reserved at max_tokens and refunded to the real
 * output (a fifth of max_tokens), against an upstream that does the same
 * (Anthropic OTPM style). fanout's refunding accounting against the
 * reserve-never-refund accounting of the OpenAI cookbook's parallel processor,
 * both through the engine for the same fixed time.
 */

const clock = new SystemClock();

export interface KnownLimitsResult {
  requests: number;
  limit: string;
  fanout: { wallMs: number; utilisation: number; http429: number };
  naive: { wallMs: number; utilisation: number; http429: number; concurrency: number };
  lowerBoundMs: number;
}

const upstreamModel = (limits: LimitSpec, extra: MockModelOptions = {}): MockModelOptions => ({
  latency: { kind: 'lognormal', medianMs: 150, sigma: 0.3 },
  outputTokens: { min: 20, max: 60 },
  limits,
  ...extra,
});

function prompt(i: number) {
  return [{ role: 'user' as const, content: `Summarise ticket ${i} in two sentences.` }];
}

export async function benchKnownLimits(requests = 240): Promise<KnownLimitsResult> {
  const limits: LimitSpec = { requestsPerMinute: 1200, tokensPerMinute: 1_200_000, burstSeconds: 1 };

  // fanout, told the limits.
  const upstream = new MockProvider({ seed: 11, models: { up: upstreamModel(limits) } });
  const engine = createEngine({ providers: [upstream], models: { 'mock:up': { limits } } });
  const t0 = nowMs();
  const outcomes = await engine.gather(
    Array.from({ length: requests }, (_, i) => ({ model: 'mock:up', messages: prompt(i), maxTokens: 100 })),
  );
  const fanoutWall = nowMs() - t0;
  if (outcomes.some((o) => !o.ok)) throw new Error('fanout: a call failed');
  let shortest = Number.POSITIVE_INFINITY;
  let providerMs = 0;
  for (const o of outcomes) {
    for (const a of o.status?.attempts ?? []) shortest = Math.min(shortest, (a.endedAt ?? a.startedAt) - a.startedAt);
    providerMs += o.status?.timing.providerMs ?? 0;
  }
  const bound = lowerBound(
    [
      {
        key: 'mock:up',
        buckets: engine.limiter.buckets('mock:up'),
        charged: engine.limiter.stats('mock:up')!.charged,
        providerMs,
        shortestCallMs: shortest,
        maxConcurrent: Infinity,
      },
    ],
    engine.concurrency,
    0,
  );
  const fanout429 = upstream.stats('up').rateLimited;
  await engine.close();

  // A naive client: 16 workers, each retrying a 429 after its retry-after.
  const concurrency = 16;
  const naiveUpstream = new MockProvider({ seed: 11, models: { up: upstreamModel(limits) } });
  const controller = new AbortController();
  setMaxListeners(concurrency + 1, controller.signal);
  const signal = controller.signal;
  let next = 0;
  const t1 = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < requests; i = next++) {
        for (;;) {
          try {
            await naiveUpstream.complete(
              { model: 'up', messages: prompt(i), maxTokens: 100 },
              { signal, attempt: 1, clock },
            );
            break;
          } catch (error) {
            if (!(error instanceof ProviderError) || error.status !== 429) throw error;
            await clock.sleep(error.retryAfterMs ?? 1000);
          }
        }
      }
    }),
  );
  const naiveWall = nowMs() - t1;
  return {
    requests,
    limit: '1,200 rpm / 1.2M tpm, 1 s burst',
    lowerBoundMs: bound.ms,
    fanout: { wallMs: fanoutWall, utilisation: bound.ms / fanoutWall, http429: fanout429 },
    naive: {
      wallMs: naiveWall,
      utilisation: bound.ms / naiveWall,
      http429: naiveUpstream.stats('up').rateLimited,
      concurrency,
    },
  };
}

export interface TokenRefundResult {
  seconds: number;
  warmupSeconds: number;
  limit: string;
  refunding: { outputTokensPerMinute: number; utilisation: number; http429: number };
  neverRefund: { outputTokensPerMinute: number; utilisation: number; http429: number };
}

/**
 * Output tokens the upstream completed per minute in steady state: counted
 * from the end of the warm-up (the initial burst is spent by then) to the end
 * of the run, so neither the burst nor the calls still in flight at the end
 * distort the rate.
 */
async function steadyRate(
  accounting: 'anthropic' | 'openai',
  seconds: number,
  warmupSeconds: number,
  limits: LimitSpec,
) {
  const upstream = new MockProvider({ seed: 5, models: { up: upstreamModel(limits, { outputTokens: 40 }) } });
  const engine = createEngine({ providers: [upstream], models: { 'mock:up': { limits, accounting } } });
  for (let i = 0; i < 5000; i++) engine.submit({ model: 'mock:up', messages: prompt(i), maxTokens: 200 });
  await clock.sleep(warmupSeconds * 1000);
  const atWarm = upstream.stats('up').outputTokens;
  const warmAt = nowMs();
  await clock.sleep((seconds - warmupSeconds) * 1000);
  const used = upstream.stats('up');
  const elapsedMs = nowMs() - warmAt;
  await engine.close();
  return { outputTokensPerMinute: ((used.outputTokens - atWarm) / elapsedMs) * 60_000, http429: used.rateLimited };
}

export async function benchTokenRefunds(seconds = 12, warmupSeconds = 2): Promise<TokenRefundResult> {
  const otpm = 60_000;
  const limits: LimitSpec = { requestsPerMinute: 100_000, outputTokensPerMinute: otpm, burstSeconds: 1 };
  const withUtilisation = (r: { outputTokensPerMinute: number; http429: number }) => ({
    ...r,
    utilisation: r.outputTokensPerMinute / otpm,
  });
  return {
    seconds,
    warmupSeconds,
    limit: `${otpm.toLocaleString('en-US')} output tokens/min, 1 s burst; max_tokens 200, real output 40`,
    refunding: withUtilisation(await steadyRate('anthropic', seconds, warmupSeconds, limits)),
    neverRefund: withUtilisation(await steadyRate('openai', seconds, warmupSeconds, limits)),
  };
}

export interface LearnedLimitsResult {
  seconds: number;
  warmupSeconds: number;
  limit: string;
  fanout: { utilisation: number; http429: number; requests: number };
  naive: { utilisation: number; http429: number; requests: number; concurrency: number };
}

/**
 * W-learned: an OpenAI-compatible HTTP upstream enforces 1,200 requests per
 * minute (1-second burst) and tells its clients only through its answers'
 * rate-limit headers and its 429s with retry-after; fanout, through its
 * OpenAI-compatible provider, is given no limit (the naive client uses the
 * real `openai` SDK). Requests the upstream completed between the
 * end of the warm-up and the end of the run, against the limit; 429s over all
 * requests.
 */
export async function benchLearnedLimits(seconds = 20, warmupSeconds = 10): Promise<LearnedLimitsResult> {
  const limits: LimitSpec = { requestsPerMinute: 1200, burstSeconds: 1 };
  const perSecond = 1200 / 60;
  const latency: LatencyProfile = { kind: 'lognormal', medianMs: 150, sigma: 0.3 };
  const steady = async (run: (url: string, stop: AbortSignal) => Promise<void>) => {
    const upstream = await startLimitedUpstream(limits, latency);
    const controller = new AbortController();
    const running = run(upstream.url, controller.signal);
    await clock.sleep(warmupSeconds * 1000);
    const atWarm = upstream.completed();
    const warmAt = nowMs();
    await clock.sleep((seconds - warmupSeconds) * 1000);
    const result = {
      utilisation: (upstream.completed() - atWarm) / (perSecond * ((nowMs() - warmAt) / 1000)),
      http429: upstream.refused(),
      requests: upstream.requests(),
    };
    controller.abort();
    await running;
    await upstream.close();
    return result;
  };
  const fanout = await steady(async (url, stop) => {
    const engine = createEngine({
      providers: [new OpenAiCompatibleProvider({ name: 'up', apiKey: 'k', baseURL: url })],
      cache: false,
    });
    for (let i = 0; i < 2000; i++) engine.submit({ model: 'up:m', messages: prompt(i), maxTokens: 100 });
    await new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve(), { once: true }));
    await engine.close();
  });
  const concurrency = 16;
  const naive = await steady(async (url, stop) => {
    const client = new OpenAI({ apiKey: 'k', baseURL: url, maxRetries: 0 });
    // Each worker holds at most two listeners on `stop` at once: its request's and, after a 429, its sleep's.
    setMaxListeners(2 * concurrency, stop);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (!stop.aborted) {
          const i = next++;
          // A signal per request: the SDK leaves a listener on the signal it is given, so one shared
          // signal would gather a listener per request made.
          const call = new AbortController();
          const abort = (): void => call.abort();
          stop.addEventListener('abort', abort, { once: true });
          try {
            await client.chat.completions.create(
              { model: 'm', messages: prompt(i), max_tokens: 100 },
              { signal: call.signal },
            );
          } catch (error) {
            if (stop.aborted) return;
            const status = (error as { status?: number }).status;
            if (status !== 429) throw error;
            const wait = Number((error as { headers?: Headers }).headers?.get('retry-after-ms') ?? 1000);
            await clock.sleep(wait, stop).catch(() => undefined);
          } finally {
            stop.removeEventListener('abort', abort);
          }
        }
      }),
    );
  });
  return {
    seconds,
    warmupSeconds,
    limit: '1,200 rpm with a 1-second burst, told only by headers and 429s, over HTTP',
    fanout,
    naive: { ...naive, concurrency },
  };
}

export interface AnthropicLimitsResult {
  calls: number;
  limit: string;
  lowerBoundMs: number;
  told: { utilisation: number; wallMs: number; http429: number };
  learned: { utilisation: number; wallMs: number; http429: number };
}

/**
 * W-anthropic: the Tier-1 shape, scaled twelvefold to run in
 * seconds: an upstream in Anthropic's dialect enforcing 600 rpm, 360,000
 * input and 96,000 output tokens a minute (10-second buckets), answering with
 * Anthropic's headers, `tokens-*` included. 240 calls of 750 input tokens,
 * max_tokens 300, 60 written, 200 ms each, through fanout's Anthropic
 * provider (the real SDK), told the limits and then given none. Input
 * binds: the lower bound is when the last call can start plus one call.
 */
export async function benchAnthropicLimits(calls = 240): Promise<AnthropicLimitsResult> {
  const limits: LimitSpec = {
    requestsPerMinute: 600,
    inputTokensPerMinute: 360_000,
    outputTokensPerMinute: 96_000,
    burstSeconds: 10,
  };
  const call = { inputTokens: 750, outputTokens: 60, latencyMs: 200 };
  const burst = (360_000 * 10) / 60;
  const lowerBoundMs = Math.max(0, ((calls * call.inputTokens - burst) / 360_000) * 60_000) + call.latencyMs;
  const run = async (told: boolean) => {
    const upstream = await startAnthropicUpstream(limits, call);
    const provider = new AnthropicProvider({ apiKey: 'k', baseURL: upstream.url });
    const engine = createEngine({
      providers: [provider],
      cache: false,
      models: told ? { 'anthropic:m': { limits } } : {},
    });
    const start = nowMs();
    const outcomes = await engine.gather(
      Array.from({ length: calls }, (_, i) => ({
        model: 'anthropic:m',
        // About 750 tokens as o200k counts them, so fanout's estimate and the upstream's count agree.
        messages: [{ role: 'user' as const, content: `Ticket ${i}:${' word'.repeat(740)}` }],
        maxTokens: 300,
      })),
    );
    const wallMs = nowMs() - start;
    await engine.close();
    await upstream.close();
    if (outcomes.some((o) => !o.ok)) throw new Error('W-anthropic: a call failed');
    return { utilisation: lowerBoundMs / wallMs, wallMs, http429: upstream.refused() };
  };
  return {
    calls,
    limit: '600 rpm / 360,000 ITPM / 96,000 OTPM, 10 s buckets, Anthropic headers',
    lowerBoundMs,
    told: await run(true),
    learned: await run(false),
  };
}
