import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { seededRandom } from '../src/contracts/random.js';
import { OpenAiCompatibleProvider } from '../src/providers/openai-compatible/openai-provider.js';
import { openAiError, startOpenAiFake, type FakeReply, type OpenAiFake } from './fakes/openai-fake.js';

let fake: OpenAiFake;
beforeAll(async () => {
  fake = await startOpenAiFake();
});
afterAll(() => fake.close());

const deltasFor = (prompt: string): string[] => ['Review ', 'of ', prompt, ': ', 'fine.'];

describe('chaos: 1,000 streamed calls through a failing upstream', () => {
  it('every call completes or fails with its reasons recorded; no retry comes before its retry-after; nothing is lost', async () => {
    const random = seededRandom(1000);
    fake.respondWith((request): FakeReply => {
      const prompt = String((request.body.messages as Array<{ content: string }>).at(-1)?.content);
      const draw = random.next();
      if (draw < 0.1)
        return openAiError(500, 'The server had an error while processing your request.', 'server_error', null);
      if (draw < 0.12) return openAiError(529, 'Overloaded', 'server_error', 'overloaded', { 'retry-after-ms': '40' });
      if (draw < 0.14) return { kind: 'reset' };
      if (draw < 0.15) return { kind: 'hang' };
      if (draw < 0.2) return { kind: 'stream', deltas: deltasFor(prompt), errorAfter: 2 };
      return { kind: 'stream', deltas: deltasFor(prompt), usage: { prompt_tokens: 20, completion_tokens: 5 } };
    });
    const engine = createEngine({
      providers: [new OpenAiCompatibleProvider({ name: 'flaky', apiKey: 'k', baseURL: fake.url })],
      concurrency: 64,
      cache: false,
      retry: { maxAttempts: 6, baseDelayMs: 5, maxDelayMs: 40 },
      random: seededRandom(7),
    });
    const outcomes = await engine.gather(
      Array.from({ length: 1000 }, (_, i) => ({
        model: 'flaky:gpt',
        messages: [{ role: 'user' as const, content: `change ${i}` }],
        stream: true,
        // Long enough for a stream on a busy machine; a hanging one still ends by it.
        attemptTimeoutMs: 1000,
      })),
    );
    await engine.close();

    expect(outcomes).toHaveLength(1000);
    let attempts = 0;
    for (const [i, outcome] of outcomes.entries()) {
      const status = outcome.status!;
      attempts += status.attempts.length;
      if (outcome.ok) {
        // Never a partial answer: the whole text of the one stream that finished.
        expect(outcome.result.text).toBe(deltasFor(`change ${i}`).join(''));
      } else {
        expect(status.attempts.length).toBeGreaterThan(0);
        expect(status.attempts.every((a) => a.error !== undefined)).toBe(true);
      }
      for (const [n, attempt] of status.attempts.entries()) {
        const next = status.attempts[n + 1];
        if (next && attempt.error?.retryAfterMs !== undefined)
          expect(next.startedAt).toBeGreaterThanOrEqual((attempt.endedAt as number) + attempt.error.retryAfterMs);
      }
    }
    // At most one upstream request per attempt, and no hidden SDK retries. An attempt that never reached
    // the upstream (its pooled connection had just been reset) failed with a network error.
    const networkFailures = outcomes
      .flatMap((o) => o.status!.attempts)
      .filter((a) => a.error?.code === 'network').length;
    expect(fake.requests.length).toBeLessThanOrEqual(attempts);
    expect(attempts - fake.requests.length).toBeLessThanOrEqual(networkFailures);
    expect(fake.requests.every((r) => r.headers['x-stainless-retry-count'] === '0')).toBe(true);
    // The faults happened, and retries mended most of them.
    const codes = outcomes.flatMap((o) => o.status!.attempts.map((a) => a.error?.code).filter(Boolean));
    for (const code of ['server_error', 'overloaded', 'network', 'timeout']) expect(codes).toContain(code);
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(990);
  });
});
