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

describe("Bedrock provider: tools, tool results, images and JSON output in Converse's own form", () => {
  const agentTurn: ModelCall = {
    model: 'anthropic.claude-sonnet-4-5',
    maxTokens: 500,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Does the diagram match?' },
          { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=' },
        ],
      },
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'tu_1', name: 'read_file', arguments: '{"path":"a"}' },
          { id: 'tu_2', name: 'read_file', arguments: '{"path":"b"}' },
        ],
      },
      { role: 'tool', toolCallId: 'tu_1', content: 'A' },
      { role: 'tool', toolCallId: 'tu_2', content: 'B' },
    ],
    tools: [{ name: 'read_file', description: 'Read a file', parameters: { type: 'object' }, strict: true }],
    toolChoice: { name: 'read_file' },
    responseFormat: { type: 'json_schema', name: 'findings', schema: { type: 'object' } },
  };

  it('sends each field in its Converse form and reads toolUse blocks back as tool calls', async () => {
    fake.script({
      kind: 'converse',
      text: 'One more.',
      toolUse: { toolUseId: 'tu_3', name: 'read_file', input: { path: 'c' } },
    });
    const result = await provider().complete(agentTurn, context());
    const body = fake.requests[0]?.body;
    expect(body?.messages).toEqual([
      {
        role: 'user',
        content: [{ text: 'Does the diagram match?' }, { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } }],
      },
      {
        role: 'assistant',
        content: [
          { toolUse: { toolUseId: 'tu_1', name: 'read_file', input: { path: 'a' } } },
          { toolUse: { toolUseId: 'tu_2', name: 'read_file', input: { path: 'b' } } },
        ],
      },
      {
        role: 'user',
        content: [
          { toolResult: { toolUseId: 'tu_1', content: [{ text: 'A' }] } },
          { toolResult: { toolUseId: 'tu_2', content: [{ text: 'B' }] } },
        ],
      },
    ]);
    expect(body?.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'read_file',
            description: 'Read a file',
            inputSchema: { json: { type: 'object' } },
            strict: true,
          },
        },
      ],
      toolChoice: { tool: { name: 'read_file' } },
    });
    expect(body?.outputConfig).toEqual({
      textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: '{"type":"object"}', name: 'findings' } } },
    });
    expect(result).toMatchObject({
      text: 'One more.',
      toolCalls: [{ id: 'tu_3', name: 'read_file', arguments: '{"path":"c"}' }],
      finishReason: 'tool_calls',
    });
  });

  it('gathers a streamed toolUse block from its input pieces', async () => {
    fake.script({
      kind: 'stream',
      deltas: ['Checking.'],
      toolUse: { toolUseId: 'tu_4', name: 'read_file', inputPieces: ['{"pa', 'th":"d"}'] },
    });
    const events = [];
    for await (const event of provider().stream(agentTurn, context())) events.push(event);
    const done = events.at(-1);
    expect(done?.type === 'done' && done.result).toMatchObject({
      text: 'Checking.',
      toolCalls: [{ id: 'tu_4', name: 'read_file', arguments: '{"path":"d"}' }],
      finishReason: 'tool_calls',
    });
  });

  it('refuses by name what Converse cannot take', () => {
    const refused = provider().refuses({
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'image', url: 'https://example.com/a.png' }] }],
      toolChoice: 'none',
      parallelToolCalls: true,
      responseFormat: { type: 'json_object' },
    });
    expect(refused).toEqual([
      'tool_choice none is not supported by bedrock; send no tools',
      'parallel_tool_calls is not supported by bedrock',
      'response_format json_object is not supported by bedrock; give a json_schema',
      'messages.0.content.0: bedrock takes images as base64 data: URLs of type png, jpeg, gif or webp',
    ]);
  });
});
