import { describe, expect, it } from 'vitest';
import {
  chatCompletionBody,
  completionChunk,
  errorBody,
  messagesToChat,
  openAiUsage,
  paramOf,
  requestFromChatBody,
  toolsToChat,
  usageFromOpenAi,
} from './wire.js';

describe("OpenAI's wire format", () => {
  it('reads a chat body into a request and writes the request back as the same messages', () => {
    const request = requestFromChatBody(
      {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'developer', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Say ' },
              { type: 'text', text: 'hi' },
            ],
          },
        ],
        max_completion_tokens: 50,
        stop: 'END',
        stream: true,
        stream_options: { include_usage: true },
      },
      { defaultProvider: 'openai' },
    );
    expect(request).toEqual({
      model: 'openai:gpt-4o-mini',
      system: 'Be brief.',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Say ' },
            { type: 'text', text: 'hi' },
          ],
        },
      ],
      maxTokens: 50,
      maxTokensField: 'max_completion_tokens',
      stop: ['END'],
      stream: true,
      includeUsage: true,
      choices: 1,
    });
    expect(messagesToChat(request)).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Say ' },
          { type: 'text', text: 'hi' },
        ],
      },
    ]);
    expect(() => requestFromChatBody({ model: 'gpt-4o-mini', messages: [] })).toThrow(
      'messages: expected at least one message',
    );
  });

  it("turns usage each way, cached prompt tokens kept apart in fanout's and inside OpenAI's", () => {
    const openAi = {
      prompt_tokens: 1200,
      completion_tokens: 10,
      total_tokens: 1210,
      prompt_tokens_details: { cached_tokens: 1024 },
    };
    const usage = usageFromOpenAi(openAi);
    expect(usage).toEqual({ inputTokens: 176, outputTokens: 10, cacheReadTokens: 1024, cacheWriteTokens: 0 });
    expect(openAiUsage(usage)).toEqual(openAi);
  });

  it('writes the completion, a stream chunk and an error as OpenAI does', () => {
    const result = {
      text: 'Hello',
      usage: { inputTokens: 3, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
      finishReason: 'stop' as const,
      model: 'mock:m',
    };
    expect(chatCompletionBody('t1', 1700000000, result)).toEqual({
      id: 'chatcmpl-t1',
      object: 'chat.completion',
      created: 1700000000,
      model: 'mock:m',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello', refusal: null },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4, prompt_tokens_details: { cached_tokens: 0 } },
    });
    const stream = { id: 't1', created: 1700000000, model: 'mock:m' };
    expect(completionChunk(stream, { content: 'He' }, null)).toBe(
      'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1700000000,"model":"mock:m","choices":[{"index":0,"delta":{"content":"He"},"logprobs":null,"finish_reason":null}]}\n\n',
    );
    expect(JSON.parse(completionChunk(stream, {}, null, openAiUsage(result.usage)).slice(6))).toMatchObject({
      choices: [],
      usage: { total_tokens: 4 },
    });
    expect(errorBody('not_found', 'no task', 404)).toEqual({
      error: { code: 'not_found', message: 'no task', type: 'invalid_request_error', param: null },
    });
    expect(paramOf('messages.0.content: expected a string')).toBe('messages.0.content');
    expect(paramOf('(root): the batch has no lines')).toBeNull();
    expect(errorBody('overloaded', 'busy')).toEqual({
      error: { code: 'overloaded', message: 'busy', type: 'server_error', param: null },
    });
  });

  it('carries a tool conversation, an image, a response format and fields fanout does not read, both ways', () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'lookup',
          description: 'Find a file',
          parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
          strict: true,
        },
      },
    ];
    const messages = [
      {
        role: 'user' as const,
        content: [
          { type: 'text' as const, text: 'What is in this picture, and in README?' },
          { type: 'image_url' as const, image_url: { url: 'https://example.com/cat.png', detail: 'low' as const } },
        ],
      },
      {
        role: 'assistant' as const,
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function' as const, function: { name: 'lookup', arguments: '{"path":"README"}' } },
        ],
      },
      { role: 'tool' as const, tool_call_id: 'call_1', content: 'fanout runs model calls at once' },
    ];
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'answer', schema: { type: 'object' }, strict: true },
    };
    const request = requestFromChatBody(
      {
        model: 'openai:gpt-4o',
        messages,
        tools,
        tool_choice: { type: 'function', function: { name: 'lookup' } },
        parallel_tool_calls: false,
        response_format: responseFormat,
        presence_penalty: 0.5,
        user: 'u-1',
        a_field_newer_than_fanout: { on: true },
      },
      {},
    );
    expect(request.tools).toEqual([
      {
        name: 'lookup',
        description: 'Find a file',
        parameters: tools[0]?.function.parameters,
        strict: true,
      },
    ]);
    expect(request.toolChoice).toEqual({ name: 'lookup' });
    expect(request.passthrough).toEqual({
      presence_penalty: 0.5,
      user: 'u-1',
      a_field_newer_than_fanout: { on: true },
    });
    expect(messagesToChat(request)).toEqual(messages);
    expect(toolsToChat(request)).toEqual({
      tools,
      tool_choice: { type: 'function', function: { name: 'lookup' } },
      parallel_tool_calls: false,
      response_format: responseFormat,
    });
  });

  it('refuses by name the fields whose effect it cannot carry', () => {
    const body = { model: 'openai:gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
    expect(requestFromChatBody({ ...body, n: 3 }).choices).toBe(3);
    expect(() => requestFromChatBody({ ...body, n: 17 })).toThrow('n: at most 16 choices per request');
    // Log probabilities pass through to an OpenAI-compatible provider (others refuse passed-through fields by name).
    expect(requestFromChatBody({ ...body, logprobs: true, top_logprobs: 3 }).passthrough).toEqual({
      logprobs: true,
      top_logprobs: 3,
    });
    expect(() => requestFromChatBody({ ...body, functions: [] })).toThrow('functions: deprecated by OpenAI; use tools');
    expect(() => requestFromChatBody({ ...body, modalities: ['text', 'audio'] })).toThrow(
      'modalities: only text answers are supported',
    );
    expect(() =>
      requestFromChatBody({
        ...body,
        messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }],
      }),
    ).toThrow(/messages\.0/);
  });

  it('writes an answer that called tools as OpenAI does: no text, its calls, finish reason tool_calls', () => {
    const body = chatCompletionBody('t2', 1700000000, {
      text: '',
      toolCalls: [{ id: 'call_9', name: 'lookup', arguments: '{"path":"a"}' }],
      usage: { inputTokens: 3, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
      finishReason: 'tool_calls',
      model: 'gpt-4o',
    });
    expect(body.choices[0]).toEqual({
      index: 0,
      message: {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'lookup', arguments: '{"path":"a"}' } }],
      },
      finish_reason: 'tool_calls',
      logprobs: null,
    });
  });
});
