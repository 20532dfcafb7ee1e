import { createServer } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/create-engine.js';
import { ProviderError } from '../src/contracts/errors.js';
import type { Clock } from '../src/contracts/clock.js';
import { SystemClock } from '../src/contracts/clock.js';
import { OpenAiCompatibleProvider } from '../src/providers/openai-compatible/openai-provider.js';
import type { ModelCall } from '../src/contracts/provider.js';
import { ManualClock } from '../src/contracts/manual-clock.js';
import { completion, openAiError, startOpenAiFake, type OpenAiFake } from './fakes/openai-fake.js';
import { expectClassified } from './fakes/classification.js';
import { listenOnLoopback } from './fakes/listen.js';
import { stalledCallCases } from './fakes/stalled-calls.js';

let fake: OpenAiFake;
beforeAll(async () => {
  fake = await startOpenAiFake();
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
});

const call: ModelCall = {
  model: 'gpt-4o-mini',
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Say hello' }],
  maxTokens: 50,
  temperature: 0,
};
const provider = (name = 'openai', dialect: 'openai' | 'groq' = 'openai', timeoutMs?: number) =>
  new OpenAiCompatibleProvider({ name, apiKey: 'sk-test-key', baseURL: fake.url, dialect, timeoutMs });
const context = (clock: Clock = new SystemClock(), signal = new AbortController().signal) => ({
  clock,
  attempt: 1,
  signal,
});

/** Waits for real I/O (the fake server) to reach a state; the engine's own time stays virtual. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!condition()) throw new Error('condition not reached');
}

const rateHeaders = {
  'x-ratelimit-limit-requests': '500',
  'x-ratelimit-remaining-requests': '499',
  'x-ratelimit-reset-requests': '120ms',
  'x-ratelimit-limit-tokens': '200000',
  'x-ratelimit-remaining-tokens': '199950',
  'x-ratelimit-reset-tokens': '15ms',
};

describe('OpenAI-compatible provider (a plain request per call, the openai SDK for streams)', () => {
  it('sends one request per attempt and maps the answer', async () => {
    fake.script({
      kind: 'json',
      headers: rateHeaders,
      body: completion('Hello!', { prompt_tokens: 1200, completion_tokens: 10, cached_tokens: 1024 }),
    });
    const result = await provider().complete({ ...call, latency: 'optimized' }, context());
    expect(result).toMatchObject({
      text: 'Hello!',
      finishReason: 'stop',
      model: 'gpt-4o-mini-2024-07-18',
      usage: { inputTokens: 176, cacheReadTokens: 1024, outputTokens: 10, cacheWriteTokens: 0 },
      rateLimit: {
        requestsLimit: 500,
        requestsRemaining: 499,
        requestsResetMs: 120,
        tokensLimit: 200_000,
        tokensRemaining: 199_950,
        tokensResetMs: 15,
      },
    });
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.headers.authorization).toBe('Bearer sk-test-key');
    expect(request?.headers['content-type']).toBe('application/json');
    // Exactly these fields: a latency preference is Bedrock's, never sent here.
    expect(request?.body).toEqual({
      model: 'gpt-4o-mini',
      max_tokens: 50,
      temperature: 0,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello' },
      ],
    });
  });

  it('streams deltas and ends with the usage it asked for', async () => {
    fake.script({ kind: 'stream', deltas: ['Hel', 'lo', '!'], usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const events = [];
    for await (const event of provider().stream(call, context())) events.push(event);
    expect(events.slice(0, 3)).toEqual([
      { type: 'delta', text: 'Hel' },
      { type: 'delta', text: 'lo' },
      { type: 'delta', text: '!' },
    ]);
    expect(events[3]).toMatchObject({
      type: 'done',
      result: { text: 'Hello!', usage: { inputTokens: 12, outputTokens: 3 } },
    });
    expect(fake.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.headers['x-stainless-retry-count']).toBe('0');
  });

  it('classifies every error shape fanout maps', async () => {
    const cases: Array<[Parameters<typeof fake.script>[0], Partial<ProviderError>]> = [
      [
        openAiError(
          429,
          'Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 1.146s.',
          'tokens',
          'rate_limit_exceeded',
        ),
        { code: 'rate_limited', retryable: true, retryAfterMs: 1146, status: 429 },
      ],
      [
        openAiError(429, 'Rate limit reached', 'requests', 'rate_limit_exceeded', {
          'retry-after-ms': '2500',
          'retry-after': '3',
        }),
        { code: 'rate_limited', retryable: true, retryAfterMs: 2500 },
      ],
      [
        openAiError(
          429,
          'Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 34307.',
          'tokens',
          'rate_limit_exceeded',
        ),
        { code: 'request_too_large', retryable: false },
      ],
      [
        openAiError(
          429,
          'You exceeded your current quota, please check your plan and billing details.',
          'insufficient_quota',
          'insufficient_quota',
        ),
        { code: 'quota_exhausted', retryable: false },
      ],
      [
        openAiError(400, "Invalid value for 'temperature'", 'invalid_request_error', null),
        { code: 'bad_request', retryable: false, status: 400 },
      ],
      [
        openAiError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'),
        { code: 'auth', retryable: false },
      ],
      [
        openAiError(404, 'The model `gpt-9` does not exist', 'invalid_request_error', 'model_not_found'),
        { code: 'not_found', retryable: false },
      ],
      [
        openAiError(500, 'The server had an error while processing your request.', 'server_error', null),
        { code: 'server_error', retryable: true, status: 500 },
      ],
      [
        openAiError(
          503,
          'The engine is currently overloaded, please try again later.',
          'server_error',
          'server_is_overloaded',
        ),
        { code: 'overloaded', retryable: true },
      ],
      [
        openAiError(
          498,
          'Flex tier capacity exceeded. This is a temporary error.',
          'capacity_exceeded',
          'capacity_exceeded',
        ),
        { code: 'overloaded', retryable: true },
      ],
      [{ kind: 'reset' }, { code: 'network', retryable: true }],
      // What proxies in front of a provider answer: an HTML error page, or a 200 whose body is not a completion.
      [
        { kind: 'text', status: 502, contentType: 'text/html', body: '<html><body>Bad Gateway</body></html>' },
        { code: 'server_error', retryable: true, status: 502 },
      ],
      [
        { kind: 'text', status: 200, contentType: 'text/html', body: '<html>maintenance</html>' },
        { code: 'network', retryable: true },
      ],
      [
        { kind: 'json', body: { object: 'list', data: [] } },
        { code: 'network', retryable: true },
      ],
    ];
    await expectClassified(
      cases,
      (reply) => fake.script(reply),
      () => provider().complete(call, context()),
    );
    expect(fake.requests).toHaveLength(cases.length);
  });

  it('follows a redirect to where the API now lives, sending the same request there', async () => {
    fake.script({ kind: 'json', body: completion('Hello!') });
    const moved = createServer((req, res) => {
      req.resume();
      res.writeHead(308, { location: `${fake.url}/chat/completions` }).end();
    });
    const { port, close } = await listenOnLoopback(moved);
    try {
      const result = await new OpenAiCompatibleProvider({
        name: 'openai',
        apiKey: 'sk-test-key',
        baseURL: `http://127.0.0.1:${port}/v1`,
      }).complete(call, context());
      expect(result.text).toBe('Hello!');
      expect(fake.requests).toHaveLength(1);
      expect(fake.requests[0]?.body).toMatchObject({ model: 'gpt-4o-mini', max_tokens: 50 });
      // The fake listens on another port, so another origin: the key stays behind, as fetch would leave it.
      expect(fake.requests[0]?.headers.authorization).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('never puts the prompt or the key in an error', async () => {
    fake.script(openAiError(400, 'bad', 'invalid_request_error', null));
    const error = (await provider()
      .complete({ ...call, messages: [{ role: 'user', content: 'SECRET PROMPT TEXT' }] }, context())
      .catch((e: unknown) => e)) as ProviderError;
    expect(`${error.message} ${error.body}`).not.toMatch(/SECRET PROMPT TEXT|sk-test-key/);
  });

  it('fails an attempt whose stream breaks after a 200, with no partial result', async () => {
    fake.script({ kind: 'stream', deltas: ['one', 'two', 'three'], errorAfter: 2 });
    const deltas: string[] = [];
    const error = await (async () => {
      for await (const event of provider().stream(call, context())) if (event.type === 'delta') deltas.push(event.text);
    })().catch((e: unknown) => e);
    expect(deltas).toEqual(['one', 'two']);
    expect(error).toMatchObject({ code: 'server_error', retryable: true });
  });

  it('aborts the HTTP request when the attempt is cancelled or times out', async () => {
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const pending = provider()
      .complete(call, context(new SystemClock(), controller.signal))
      .catch((e: unknown) => e);
    await until(() => fake.requests.length === 1);
    controller.abort(new Error('cancelled by the test'));
    expect(await pending).toMatchObject({ message: 'cancelled by the test' });
    await until(() => fake.requests[0]?.closedEarly === true);

    const timedOut = await provider('openai', 'openai', 50)
      .complete(call, context())
      .catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ code: 'timeout', retryable: true });
  });
});

describe('the engine over the OpenAI-compatible provider', () => {
  it('waits out retry-after to the millisecond on its clock, then succeeds, one request per attempt', async () => {
    fake.script(
      openAiError(429, 'Rate limit reached', 'requests', 'rate_limit_exceeded', { 'retry-after-ms': '1234' }),
      { kind: 'json', body: completion('finally') },
    );
    const clock = new ManualClock();
    const engine = createEngine({ clock, providers: [provider()], random: { next: () => 0 }, cache: false });
    const task = engine.submit({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await until(() => task.status().state === 'rate_limited');
    expect(task.status().eta).toBe(1234);
    await clock.advanceTo(1233);
    expect(fake.requests).toHaveLength(1);
    await clock.advanceTo(1234);
    await until(() => task.status().state === 'completed');
    expect(fake.requests).toHaveLength(2);
    expect((await task.result()).text).toBe('finally');
    await engine.close();
  });

  it('does not retry a request larger than the limit', async () => {
    fake.script(
      openAiError(
        429,
        'Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 34307.',
        'tokens',
        'rate_limit_exceeded',
      ),
    );
    const engine = createEngine({ providers: [provider()], cache: false });
    const task = engine.submit({ model: 'openai:gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    await expect(task.result()).rejects.toMatchObject({ code: 'request_too_large' });
    expect(fake.requests).toHaveLength(1);
    await engine.close();
  });
});

describe('OpenAI-compatible calls that stop answering', () => {
  stalledCallCases({
    model: 'openai:gpt-4o-mini',
    provider: (timeouts) =>
      new OpenAiCompatibleProvider({ name: 'openai', apiKey: 'sk-test-key', baseURL: fake.url, timeouts }),
    scriptHang: () => fake.script({ kind: 'hang' }),
    scriptStall: () => fake.script({ kind: 'stream', deltas: ['Hel', 'lo', '!'], stallAfter: 2 }),
  });
});
