import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../src/contracts/clock.js';
import { ProviderError } from '../src/contracts/errors.js';
import { BedrockProvider } from '../src/providers/bedrock/bedrock-provider.js';
import type { ModelCall } from '../src/contracts/provider.js';
import { startBedrockFake, type BedrockFake } from './fakes/bedrock-fake.js';
import { expectClassified } from './fakes/classification.js';

let fake: BedrockFake;
beforeAll(async () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  fake = await startBedrockFake();
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
});

const model = 'anthropic.claude-sonnet-5-v1:0';
const call: ModelCall = {
  model,
  system: 'You review code.',
  cacheSystem: true,
  messages: [
    { role: 'user', content: 'The diff ...', cache: true },
    { role: 'user', content: 'Review it.' },
  ],
  maxTokens: 1000,
  temperature: 0,
  latency: 'optimized',
};
const provider = () =>
  new BedrockProvider({
    region: 'us-east-1',
    endpoint: fake.url,
    http1: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
const context = () => ({ clock: new SystemClock(), attempt: 1, signal: new AbortController().signal });

describe('Bedrock provider, through the AWS SDK', () => {
  it('calls Converse once, signed, with cache points and performanceConfig, and maps usage', async () => {
    fake.script({
      kind: 'converse',
      text: 'Looks fine.',
      usage: { inputTokens: 40, outputTokens: 9, cacheReadInputTokens: 1800, cacheWriteInputTokens: 0 },
    });
    const result = await provider().complete(call, context());
    expect(result).toMatchObject({
      text: 'Looks fine.',
      finishReason: 'stop',
      usage: { inputTokens: 40, outputTokens: 9, cacheReadTokens: 1800, cacheWriteTokens: 0 },
      requestId: '0f1a2b3c-1',
    });
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.path).toBe('/model/anthropic.claude-sonnet-5-v1%3A0/converse');
    expect(request?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
    expect(request?.headers['amz-sdk-request']).toBe('attempt=1; max=1');
    expect(request?.body).toEqual({
      messages: [
        { role: 'user', content: [{ text: 'The diff ...' }, { cachePoint: { type: 'default' } }] },
        { role: 'user', content: [{ text: 'Review it.' }] },
      ],
      system: [{ text: 'You review code.' }, { cachePoint: { type: 'default' } }],
      inferenceConfig: { maxTokens: 1000, temperature: 0 },
      performanceConfig: { latency: 'optimized' },
    });
  });

  it('streams ConverseStream deltas and the usage metadata', async () => {
    fake.script({ kind: 'stream', deltas: ['Looks', ' fine'], usage: { inputTokens: 12, outputTokens: 2 } });
    const events = [];
    for await (const event of provider().stream(call, context())) events.push(event);
    expect(events.slice(0, 2)).toEqual([
      { type: 'delta', text: 'Looks' },
      { type: 'delta', text: ' fine' },
    ]);
    expect(events[2]).toMatchObject({
      type: 'done',
      result: { text: 'Looks fine', usage: { inputTokens: 12, outputTokens: 2 } },
    });
  });

  it('fails an attempt whose stream carries an exception event after the 200', async () => {
    fake.script({ kind: 'stream', deltas: ['a', 'b', 'c'], exceptionAfter: 1 });
    const error = await (async () => {
      for await (const _ of provider().stream(call, context()));
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true });
  });

  it('classifies Bedrock’s exceptions', async () => {
    const cases: Array<[Parameters<typeof fake.script>[0], Partial<ProviderError>]> = [
      [
        {
          kind: 'error',
          status: 429,
          type: 'ThrottlingException',
          message: 'Too many requests, please wait before trying again.',
          headers: { 'x-amz-retry-after': '1500' },
        },
        { code: 'rate_limited', retryable: true, status: 429, retryAfterMs: 1500 },
      ],
      [
        { kind: 'error', status: 503, type: 'ServiceUnavailableException', message: 'Service unavailable' },
        { code: 'overloaded', retryable: true },
      ],
      [
        { kind: 'error', status: 500, type: 'InternalServerException', message: 'Internal error' },
        { code: 'server_error', retryable: true },
      ],
      [
        { kind: 'error', status: 408, type: 'ModelTimeoutException', message: 'Model timed out' },
        { code: 'timeout', retryable: true },
      ],
      [
        { kind: 'error', status: 429, type: 'ModelNotReadyException', message: 'Model is not ready' },
        { code: 'overloaded', retryable: true },
      ],
      [
        { kind: 'error', status: 400, type: 'ValidationException', message: 'maxTokens too large' },
        { code: 'bad_request', retryable: false },
      ],
      [
        { kind: 'error', status: 403, type: 'AccessDeniedException', message: 'no access' },
        { code: 'auth', retryable: false },
      ],
      [
        { kind: 'error', status: 404, type: 'ResourceNotFoundException', message: 'no such model' },
        { code: 'not_found', retryable: false },
      ],
      [
        { kind: 'error', status: 400, type: 'ServiceQuotaExceededException', message: 'quota' },
        { code: 'quota_exhausted', retryable: false },
      ],
    ];
    await expectClassified(
      cases,
      (reply) => fake.script(reply),
      () => provider().complete(call, context()),
    );
    expect(fake.requests).toHaveLength(cases.length);
  });

  it('reserves and settles as Bedrock counts, with the 5× output burndown on Claude 3.7 and later', () => {
    expect(provider().accounting(model)).toEqual({ rule: 'bedrock', outputBurndown: 5 });
    expect(provider().accounting('amazon.nova-pro-v1:0')).toEqual({ rule: 'bedrock', outputBurndown: 1 });
  });
});
