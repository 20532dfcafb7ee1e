import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../src/contracts/clock.js';
import { ProviderError } from '../src/contracts/errors.js';
import { AnthropicProvider } from '../src/providers/anthropic/anthropic-provider.js';
import type { ModelCall } from '../src/contracts/provider.js';
import {
  anthropicError,
  message,
  startAnthropicFake,
  toolUseMessage,
  type AnthropicFake,
} from './fakes/anthropic-fake.js';
import { expectClassified } from './fakes/classification.js';
import { stalledCallCases } from './fakes/stalled-calls.js';

let fake: AnthropicFake;
beforeAll(async () => {
  fake = await startAnthropicFake();
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
});

const call: ModelCall = {
  model: 'claude-sonnet-5',
  system: 'You review code. (a long shared instruction)',
  cacheSystem: true,
  messages: [
    { role: 'user', content: 'The diff: ...', cache: true },
    { role: 'user', content: 'Review it.' },
  ],
  maxTokens: 64_000,
};
const provider = () => new AnthropicProvider({ apiKey: 'sk-ant-test', baseURL: fake.url });
const context = () => ({ clock: new SystemClock(), attempt: 1, signal: new AbortController().signal });

describe('Anthropic provider, through @anthropic-ai/sdk', () => {
  it('sends cache breakpoints, one request per attempt, and maps usage with cache reads and writes', async () => {
    const reset = new Date(Date.now() + 30_000).toISOString();
    fake.script({
      kind: 'json',
      headers: {
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '49',
        'anthropic-ratelimit-input-tokens-limit': '30000',
        'anthropic-ratelimit-input-tokens-remaining': '29000',
        'anthropic-ratelimit-input-tokens-reset': reset,
        'anthropic-ratelimit-output-tokens-limit': '8000',
        'anthropic-ratelimit-output-tokens-remaining': '8000',
      },
      body: message('Looks good.', {
        input_tokens: 40,
        output_tokens: 12,
        cache_read_input_tokens: 2048,
        cache_creation_input_tokens: 0,
      }),
    });
    const result = await provider().complete(call, context());
    expect(result).toMatchObject({
      text: 'Looks good.',
      finishReason: 'stop',
      usage: { inputTokens: 40, outputTokens: 12, cacheReadTokens: 2048, cacheWriteTokens: 0 },
      rateLimit: {
        requestsLimit: 50,
        requestsRemaining: 49,
        inputTokensLimit: 30_000,
        inputTokensRemaining: 29_000,
        outputTokensLimit: 8000,
      },
    });
    expect(result.rateLimit?.inputTokensResetMs).toBeGreaterThan(25_000);
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.headers.authorization).toBe('Bearer sk-ant-test');
    expect(request?.headers['x-stainless-retry-count']).toBe('0');
    expect(request?.body).toEqual({
      model: 'claude-sonnet-5',
      max_tokens: 64_000,
      system: [
        { type: 'text', text: 'You review code. (a long shared instruction)', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'The diff: ...', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'Review it.' }] },
      ],
    });
  });

  it('streams text deltas and the final usage', async () => {
    fake.script({
      kind: 'stream',
      deltas: ['Looks', ' good'],
      usage: { input_tokens: 30, output_tokens: 2, cache_creation_input_tokens: 1500 },
    });
    const events = [];
    for await (const event of provider().stream(call, context())) events.push(event);
    expect(events.slice(0, 2)).toEqual([
      { type: 'delta', text: 'Looks' },
      { type: 'delta', text: ' good' },
    ]);
    expect(events[2]).toMatchObject({
      type: 'done',
      result: { text: 'Looks good', usage: { inputTokens: 30, outputTokens: 2, cacheWriteTokens: 1500 } },
    });
  });

  it('fails an attempt whose stream carries an error event after the 200', async () => {
    fake.script({ kind: 'stream', deltas: ['a', 'b', 'c'], errorAfter: 1 });
    const error = await (async () => {
      for await (const _ of provider().stream(call, context()));
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'overloaded', retryable: true });
  });

  it('classifies Anthropic’s errors', async () => {
    const cases: Array<[Parameters<typeof fake.script>[0], Partial<ProviderError>]> = [
      [
        anthropicError(429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit', {
          'retry-after': '7',
        }),
        { code: 'rate_limited', retryable: true, retryAfterMs: 7000 },
      ],
      [
        anthropicError(429, 'rate_limit_error', 'You have reached your specified API usage limits.'),
        { code: 'quota_exhausted', retryable: false },
      ],
      [
        anthropicError(
          429,
          'rate_limit_error',
          'spend limit',
          { 'retry-after': '60' },
          { error_code: 'enforced_spend_limit_reached' },
        ),
        { code: 'quota_exhausted', retryable: false },
      ],
      [anthropicError(529, 'overloaded_error', 'Overloaded'), { code: 'overloaded', retryable: true }],
      [
        anthropicError(529, 'overloaded_error', 'Overloaded', { 'retry-after': '3' }),
        { code: 'overloaded', retryable: true, retryAfterMs: 3000 },
      ],
      [anthropicError(500, 'api_error', 'Internal server error'), { code: 'server_error', retryable: true }],
      [anthropicError(504, 'timeout_error', 'Request timed out'), { code: 'timeout', retryable: true }],
      [
        anthropicError(413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.'),
        { code: 'request_too_large', retryable: false },
      ],
      [
        anthropicError(400, 'invalid_request_error', 'max_tokens: too large'),
        { code: 'bad_request', retryable: false },
      ],
      [anthropicError(401, 'authentication_error', 'invalid x-api-key'), { code: 'auth', retryable: false }],
      [
        anthropicError(402, 'billing_error', 'Your credit balance is too low'),
        { code: 'quota_exhausted', retryable: false },
      ],
      [anthropicError(404, 'not_found_error', 'model: claude-9'), { code: 'not_found', retryable: false }],
    ];
    await expectClassified(
      cases,
      (reply) => fake.script(reply),
      () => provider().complete(call, context()),
    );
  });

  it('charges cache reads against input limits only on the older models that count them', () => {
    expect(provider().accounting('claude-sonnet-5')).toEqual({ rule: 'anthropic', cacheReadsCount: false });
    expect(provider().accounting('claude-3-5-haiku-20241022')).toEqual({ rule: 'anthropic', cacheReadsCount: true });
  });
});

describe('Anthropic calls that stop answering', () => {
  stalledCallCases({
    model: 'anthropic:claude-sonnet-5',
    provider: (timeouts) => new AnthropicProvider({ apiKey: 'sk-ant-test', baseURL: fake.url, timeouts }),
    scriptHang: () => fake.script({ kind: 'hang' }),
    scriptStall: () => fake.script({ kind: 'stream', deltas: ['Hel', 'lo', '!'], stallAfter: 2 }),
  });
});

describe("Anthropic provider: tools, tool results, images and JSON output in Anthropic's own form", () => {
  const agentTurn: ModelCall = {
    model: 'claude-sonnet-4-5',
    maxTokens: 500,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Does the diagram match src/core?' },
          { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=' },
          { type: 'image', url: 'https://example.com/diagram.webp' },
        ],
      },
      {
        role: 'assistant',
        content: 'Let me look.',
        toolCalls: [
          { id: 'toolu_1', name: 'read_file', arguments: '{"path":"src/core"}' },
          { id: 'toolu_2', name: 'read_file', arguments: '{"path":"README.md"}' },
        ],
      },
      { role: 'tool', toolCallId: 'toolu_1', content: 'engine.ts task-board.ts' },
      { role: 'tool', toolCallId: 'toolu_2', content: '# fanout' },
    ],
    tools: [
      {
        name: 'read_file',
        description: 'Read a file',
        parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
        strict: true,
      },
    ],
    toolChoice: 'required',
    parallelToolCalls: false,
    responseFormat: { type: 'json_schema', name: 'findings', schema: { type: 'object' } },
  };

  it('sends each field in its Anthropic form and reads tool_use blocks back as tool calls', async () => {
    fake.script({
      kind: 'json',
      body: toolUseMessage('One more file.', {
        id: 'toolu_3',
        name: 'read_file',
        input: { path: 'src/core/attempts.ts' },
      }),
    });
    const result = await provider().complete(agentTurn, context());
    expect(fake.requests[0]?.body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 500,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Does the diagram match src/core?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/diagram.webp' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Let me look.' },
            { type: 'tool_use', id: 'toolu_1', name: 'read_file', input: { path: 'src/core' } },
            { type: 'tool_use', id: 'toolu_2', name: 'read_file', input: { path: 'README.md' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'engine.ts task-board.ts' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: '# fanout' },
          ],
        },
      ],
      tools: [
        {
          name: 'read_file',
          description: 'Read a file',
          input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
          strict: true,
        },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      output_config: { format: { type: 'json_schema', schema: { type: 'object' } } },
    });
    expect(result).toMatchObject({
      text: 'One more file.',
      toolCalls: [{ id: 'toolu_3', name: 'read_file', arguments: '{"path":"src/core/attempts.ts"}' }],
      finishReason: 'tool_calls',
    });
  });

  it('gathers a streamed tool_use block from its input_json_delta pieces', async () => {
    fake.script({
      kind: 'stream',
      deltas: ['Checking.'],
      toolUse: { id: 'toolu_4', name: 'read_file', inputPieces: ['{"pa', 'th": "a.ts"', '}'] },
    });
    const events = [];
    for await (const event of provider().stream({ ...agentTurn, responseFormat: undefined }, context()))
      events.push(event);
    expect(events.flatMap((e) => (e.type === 'tool-delta' ? [e.call] : []))).toEqual([
      { index: 0, id: 'toolu_4', name: 'read_file' },
      { index: 0, arguments: '{"pa' },
      { index: 0, arguments: 'th": "a.ts"' },
      { index: 0, arguments: '}' },
    ]);
    const done = events.at(-1);
    expect(done?.type === 'done' && done.result).toMatchObject({
      text: 'Checking.',
      toolCalls: [{ id: 'toolu_4', name: 'read_file', arguments: '{"path": "a.ts"}' }],
      finishReason: 'tool_calls',
    });
  });

  it('refuses by name what Anthropic cannot take', () => {
    const refused = provider().refuses({
      model: 'claude-sonnet-4-5',
      messages: [
        { role: 'user', content: [{ type: 'image', url: 'data:image/bmp;base64,Qk0=' }] },
        { role: 'assistant', content: '', toolCalls: [{ id: 't', name: 'f', arguments: 'not json' }] },
      ],
      responseFormat: { type: 'json_object' },
      passthrough: { logprobs: true },
    });
    expect(refused).toEqual([
      'logprobs is not supported by anthropic',
      'response_format json_object is not supported by anthropic; give a json_schema',
      'messages.0.content.0: anthropic takes base64 images of type jpeg, png, gif or webp',
      "messages.1.toolCalls.0.arguments: not a JSON object, and anthropic takes a tool call's input as one",
    ]);
  });
});
