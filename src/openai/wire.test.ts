import { describe, expect, it } from 'vitest';
import {
  chatCompletionBody,
  completionChunk,
  errorBody,
  messagesToChat,
  openAiUsage,
  requestFromChatBody,
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
      messages: [{ role: 'user', content: 'Say hi' }],
      maxTokens: 50,
      stop: ['END'],
      stream: true,
      includeUsage: true,
    });
    expect(messagesToChat(request)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hi' },
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
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4, prompt_tokens_details: { cached_tokens: 0 } },
    });
    const stream = { id: 't1', created: 1700000000, model: 'mock:m' };
    expect(completionChunk(stream, { content: 'He' }, null)).toBe(
      'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1700000000,"model":"mock:m","choices":[{"index":0,"delta":{"content":"He"},"finish_reason":null}]}\n\n',
    );
    expect(JSON.parse(completionChunk(stream, {}, null, openAiUsage(result.usage)).slice(6))).toMatchObject({
      choices: [],
      usage: { total_tokens: 4 },
    });
    expect(errorBody('not_found', 'no task', 404)).toEqual({
      error: { code: 'not_found', message: 'no task', type: 'invalid_request_error' },
    });
    expect(errorBody('overloaded', 'busy')).toEqual({
      error: { code: 'overloaded', message: 'busy', type: 'server_error' },
    });
  });
});
