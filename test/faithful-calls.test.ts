import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { message, toolUseMessage, type AnthropicFake } from './fakes/anthropic-fake.js';
import type { BedrockFake } from './fakes/bedrock-fake.js';
import { startGatewayRig, type GatewayRig } from './fakes/gateway-rig.js';
import { completion, tokenLogprob, toolCallCompletion, type OpenAiFake } from './fakes/openai-fake.js';

let rig: GatewayRig;
let fake: OpenAiFake;
let anthropic: AnthropicFake;
let bedrock: BedrockFake;
let client: OpenAI;

beforeAll(async () => {
  rig = await startGatewayRig({ models: { 'openai:gpt-4o': { limits: { requestsPerMinute: 600 } } } });
  ({ openai: fake, anthropic, bedrock, client } = rig);
});
afterAll(() => rig.close());
beforeEach(() => rig.forget());

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'read_file',
      description: 'Read a file of the repository under review',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
      strict: true,
    },
  },
];

/** An agent's second turn: a picture and a question, its first tool call, and the tool's answer. */
const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
  { role: 'system', content: 'You review pull requests.' },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'Does this diagram match src/core?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' } },
    ],
  },
  {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'read_file', arguments: '{"path":"src/core"}' } }],
  },
  { role: 'tool', tool_call_id: 'call_a', content: 'engine.ts task-board.ts attempts.ts' },
];

const responseFormat = {
  type: 'json_schema' as const,
  json_schema: {
    name: 'findings',
    schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false },
    strict: true,
  },
};

describe('a call reaches an OpenAI-compatible provider as the client sent it', () => {
  it('carries tools, tool calls, tool results, an image, a response format and fields fanout does not read', async () => {
    fake.script({
      kind: 'json',
      body: toolCallCompletion([{ id: 'call_b', name: 'read_file', arguments: '{"path":"src/core/engine.ts"}' }]),
    });
    const sentAs = {
      messages,
      tools,
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      response_format: responseFormat,
      presence_penalty: 0.25,
      frequency_penalty: 0.5,
      logit_bias: { '1734': -100 },
      user: 'reviewer-7',
      max_tokens: 300,
    };
    const answer = await client.chat.completions.create({ model: 'openai:gpt-4o', ...sentAs });
    // Every field arrives as the client wrote it; only the model loses fanout's provider prefix.
    expect(fake.requests[0]?.body).toEqual({ model: 'gpt-4o', ...sentAs });
    expect(answer.choices[0]?.finish_reason).toBe('tool_calls');
    expect(answer.choices[0]?.message).toEqual({
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_b', type: 'function', function: { name: 'read_file', arguments: '{"path":"src/core/engine.ts"}' } },
      ],
    });
  });

  it('sends the output ceiling under the name the client used, and none when the client named none', async () => {
    fake.script({ kind: 'json', body: completion('ok') });
    const ask = { model: 'openai:gpt-4o', messages: [{ role: 'user' as const, content: 'hi' }] };
    await client.chat.completions.create({ ...ask, max_completion_tokens: 4000, reasoning_effort: 'low' });
    await client.chat.completions.create(ask);
    expect(fake.requests.map((r) => r.body)).toEqual([
      { model: 'gpt-4o', messages: ask.messages, max_completion_tokens: 4000, reasoning_effort: 'low' },
      { model: 'gpt-4o', messages: ask.messages },
    ]);
  });

  it('answers n choices from n calls, each charged, usage summed; n is not streamed', async () => {
    fake.script(
      { kind: 'json', body: completion('first', { prompt_tokens: 10, completion_tokens: 3 }) },
      { kind: 'json', body: completion('second', { prompt_tokens: 10, completion_tokens: 4 }) },
      { kind: 'json', body: completion('third', { prompt_tokens: 10, completion_tokens: 5 }) },
    );
    const ask = { model: 'openai:gpt-4o', messages: [{ role: 'user' as const, content: 'A name for a cat?' }] };
    const answer = await client.chat.completions.create({ ...ask, n: 3, temperature: 0 });
    expect(fake.requests.map((r) => r.body)).toEqual(
      Array(3).fill({ model: 'gpt-4o', messages: ask.messages, temperature: 0 }),
    );
    // Three calls in flight at once: which answer came back first is the network's business.
    expect(answer.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(answer.choices.map((c) => c.message.content).sort()).toEqual(['first', 'second', 'third']);
    expect(answer.usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 });
    const streamed = await client.chat.completions.create({ ...ask, n: 2, stream: true }).catch((e: unknown) => e);
    expect((streamed as Error).message).toContain('n: more than one choice is not streamed');
    // The error names its field in `param`, as OpenAI's error bodies do.
    const tooMany = await client.chat.completions.create({ ...ask, n: 17 }).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooMany as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
  });

  it('asks for log probabilities as the client did and hands them back, streamed or not; other providers refuse them', async () => {
    const tokens = [tokenLogprob('Hel', 0), tokenLogprob('lo', 1)];
    const answered = completion('Hello') as { choices: Array<{ logprobs: unknown }> };
    (answered.choices[0] as { logprobs: unknown }).logprobs = { content: tokens, refusal: null };
    fake.script({ kind: 'json', body: answered }, { kind: 'stream', deltas: ['Hel', 'lo'], logprobs: true });
    const ask = {
      model: 'openai:gpt-4o',
      messages: [{ role: 'user' as const, content: 'Say hello' }],
      logprobs: true,
      top_logprobs: 2,
    };
    const answer = await client.chat.completions.create(ask);
    expect(fake.requests[0]?.body).toEqual({ ...ask, model: 'gpt-4o' });
    expect(answer.choices[0]?.logprobs).toEqual({ content: tokens, refusal: null });
    const streamed: unknown[] = [];
    for await (const chunk of await client.chat.completions.create({ ...ask, stream: true }))
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(tokens);
    const refused = await client.chat.completions
      .create({ ...ask, model: 'anthropic:claude-sonnet-4-5' })
      .catch((e: unknown) => e);
    expect((refused as Error).message).toContain('logprobs is not supported by anthropic');
    expect((refused as Error).message).toContain('top_logprobs is not supported by anthropic');
  });

  it('hands a streamed answer’s tool calls to a streaming client, with finish reason tool_calls', async () => {
    fake.script({
      kind: 'stream',
      deltas: [],
      toolCalls: [{ id: 'call_c', name: 'read_file', argumentPieces: ['{"pa', 'th":"RE', 'ADME"}'] }],
    });
    const stream = await client.chat.completions.create({ model: 'openai:gpt-4o', messages, tools, stream: true });
    const calls = new Map<number, { id?: string; name: string; arguments: string }>();
    let finish: string | null = null;
    let pieces = 0;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      for (const delta of choice?.delta.tool_calls ?? []) {
        pieces += 1;
        const call = calls.get(delta.index) ?? { name: '', arguments: '' };
        if (delta.id) call.id = delta.id;
        call.name += delta.function?.name ?? '';
        call.arguments += delta.function?.arguments ?? '';
        calls.set(delta.index, call);
      }
      finish = choice?.finish_reason ?? finish;
    }
    expect([...calls.values()]).toEqual([{ id: 'call_c', name: 'read_file', arguments: '{"path":"README"}' }]);
    // As they came: the call's start, then each piece of its arguments.
    expect(pieces).toBe(4);
    expect(finish).toBe('tool_calls');
    expect(fake.requests[0]?.body.tools).toEqual(tools);
  });
});

/** Tool calls an OpenAI client reads from a stream, put back together. */
async function streamedToolCalls(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const calls: Array<{ id?: string; name: string; arguments: string }> = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
      const call = (calls[delta.index] ??= { name: '', arguments: '' });
      if (delta.id) call.id = delta.id;
      call.name += delta.function?.name ?? '';
      call.arguments += delta.function?.arguments ?? '';
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  return { calls, finish };
}

describe('the official openai SDK through fanout serve, to Anthropic and Bedrock in their own forms', () => {
  const ask = { messages, tools, max_tokens: 200 };

  it('reaches Anthropic as tool_use, tool_result and image blocks, and answers its tool_use as tool_calls, streamed or not', async () => {
    anthropic.script(
      { kind: 'json', body: toolUseMessage('', { id: 'toolu_9', name: 'read_file', input: { path: 'b' } }) },
      { kind: 'stream', deltas: [], toolUse: { id: 'toolu_10', name: 'read_file', inputPieces: ['{"path"', ':"c"}'] } },
    );
    const answer = await client.chat.completions.create({ model: 'anthropic:claude-sonnet-4-5', ...ask });
    expect(answer.choices[0]?.message.tool_calls).toEqual([
      { id: 'toolu_9', type: 'function', function: { name: 'read_file', arguments: '{"path":"b"}' } },
    ]);
    expect(answer.choices[0]?.finish_reason).toBe('tool_calls');
    const sent = anthropic.requests[0]?.body as {
      system: unknown;
      messages: Array<{ role: string; content: unknown[] }>;
    };
    expect(sent.system).toEqual([{ type: 'text', text: 'You review pull requests.' }]);
    expect(sent.messages.map((m) => [m.role, (m.content as Array<{ type: string }>).map((b) => b.type)])).toEqual([
      ['user', ['text', 'image']],
      ['assistant', ['tool_use']],
      ['user', ['tool_result']],
    ]);
    const streamed = await streamedToolCalls(
      await client.chat.completions.create({ model: 'anthropic:claude-sonnet-4-5', ...ask, stream: true }),
    );
    expect(streamed).toEqual({
      calls: [{ id: 'toolu_10', name: 'read_file', arguments: '{"path":"c"}' }],
      finish: 'tool_calls',
    });
  });

  it('reaches Bedrock as toolUse, toolResult and image blocks, and answers its toolUse as tool_calls, streamed or not', async () => {
    bedrock.script(
      { kind: 'converse', text: '', toolUse: { toolUseId: 'tu_9', name: 'read_file', input: { path: 'b' } } },
      {
        kind: 'stream',
        deltas: [],
        toolUse: { toolUseId: 'tu_10', name: 'read_file', inputPieces: ['{"path"', ':"c"}'] },
      },
    );
    const answer = await client.chat.completions.create({ model: 'bedrock:anthropic.claude-sonnet-4-5', ...ask });
    expect(answer.choices[0]?.message.tool_calls).toEqual([
      { id: 'tu_9', type: 'function', function: { name: 'read_file', arguments: '{"path":"b"}' } },
    ]);
    const sent = bedrock.requests[0]?.body as {
      messages: Array<{ role: string; content: object[] }>;
      toolConfig: unknown;
    };
    expect(sent.messages.map((m) => [m.role, m.content.map((b) => Object.keys(b)[0])])).toEqual([
      ['user', ['text', 'image']],
      ['assistant', ['toolUse']],
      ['user', ['toolResult']],
    ]);
    expect(sent.toolConfig).toMatchObject({ tools: [{ toolSpec: { name: 'read_file' } }] });
    const streamed = await streamedToolCalls(
      await client.chat.completions.create({ model: 'bedrock:anthropic.claude-sonnet-4-5', ...ask, stream: true }),
    );
    expect(streamed).toEqual({
      calls: [{ id: 'tu_10', name: 'read_file', arguments: '{"path":"c"}' }],
      finish: 'tool_calls',
    });
  });
});

describe('documents in a message, to each provider in its own form', () => {
  const pdf = `data:application/pdf;base64,${Buffer.from('%PDF-1.7 design review').toString('base64')}`;
  const notes = `data:text/plain;base64,${Buffer.from('The cache keeps answers for a day.').toString('base64')}`;
  const withDocuments: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Does the change match these?' },
        { type: 'file', file: { file_data: pdf, filename: 'design v2.pdf' } },
        { type: 'file', file: { file_data: notes, filename: 'notes.txt' } },
      ],
    },
  ];

  it('sends file parts as sent to OpenAI-compatible providers, as document blocks to Anthropic and Bedrock', async () => {
    fake.script({ kind: 'json', body: completion('yes') });
    await client.chat.completions.create({ model: 'openai:gpt-4o', messages: withDocuments });
    expect(fake.requests[0]?.body.messages).toEqual(withDocuments);

    anthropic.script({ kind: 'json', body: message('yes') });
    await client.chat.completions.create({
      model: 'anthropic:claude-sonnet-4-6',
      messages: withDocuments,
      max_tokens: 50,
    });
    const anthropicTurn = (anthropic.requests[0]?.body as { messages: Array<{ content: unknown[] }> }).messages[0];
    expect(anthropicTurn?.content.slice(1)).toEqual([
      {
        type: 'document',
        source: { type: 'base64', media_type: 'application/pdf', data: pdf.split(',')[1] },
        title: 'design v2.pdf',
      },
      {
        type: 'document',
        source: { type: 'text', media_type: 'text/plain', data: 'The cache keeps answers for a day.' },
        title: 'notes.txt',
      },
    ]);

    bedrock.script({ kind: 'converse', text: 'yes' });
    await client.chat.completions.create({ model: 'bedrock:anthropic.claude-sonnet-4-5', messages: withDocuments });
    const bedrockTurn = (bedrock.requests[0]?.body as { messages: Array<{ content: unknown[] }> }).messages[0];
    expect(bedrockTurn?.content.slice(1)).toEqual([
      { document: { format: 'pdf', name: 'design v2', source: { bytes: pdf.split(',')[1] } } },
      { document: { format: 'txt', name: 'notes', source: { bytes: notes.split(',')[1] } } },
    ]);
  });

  it('refuses by name a document a provider cannot read', async () => {
    const byId: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc123' } }] },
    ];
    const sheet = `data:application/vnd.oasis.opendocument.spreadsheet;base64,${Buffer.from('x').toString('base64')}`;
    const odsFile: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: 'user', content: [{ type: 'file', file: { file_data: sheet } }] },
    ];
    const refusal = async (model: string, asked: OpenAI.Chat.Completions.ChatCompletionMessageParam[]) =>
      ((await client.chat.completions.create({ model, messages: asked }).catch((e: unknown) => e)) as Error).message;
    expect(await refusal('anthropic:claude-sonnet-4-6', byId)).toContain(
      'messages.0.content.0: file_id names a file uploaded to OpenAI, which anthropic cannot read; send the document as file_data',
    );
    expect(await refusal('bedrock:anthropic.claude-sonnet-4-5', odsFile)).toContain(
      'messages.0.content.0: bedrock takes documents of type application/pdf',
    );
    expect(await refusal('anthropic:claude-sonnet-4-6', odsFile)).toContain(
      'anthropic takes documents of type application/pdf or text/plain',
    );
    expect(await refusal('mock:m', byId)).toContain('file content is not supported by mock');
    expect(anthropic.requests).toHaveLength(0);
    expect(bedrock.requests).toHaveLength(0);
    // OpenAI reads its own file ids.
    fake.script({ kind: 'json', body: completion('yes') });
    await client.chat.completions.create({ model: 'openai:gpt-4o', messages: byId });
    expect(fake.requests[0]?.body.messages).toEqual(byId);
  });
});

describe('a provider that cannot carry a field refuses it by name, before anything is sent or charged', () => {
  it('answers 400 naming each field and the provider', async () => {
    const refused = await client.chat.completions
      .create({
        model: 'anthropic:claude-sonnet-4-5',
        messages,
        tools,
        response_format: { type: 'json_object' },
        presence_penalty: 0.5,
        max_tokens: 50,
      })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    const message = (refused as InstanceType<typeof OpenAI.BadRequestError>).message;
    expect(message).toContain('presence_penalty is not supported by anthropic');
    expect(message).toContain('response_format json_object is not supported by anthropic; give a json_schema');
    expect(message).not.toContain('tools');

    const mock = await client.chat.completions
      .create({ model: 'mock:m', messages, tools, user: 'u-1' })
      .catch((error: unknown) => error);
    const mockMessage = (mock as Error).message;
    expect(mockMessage).toContain('image content is not supported by mock in this version of fanout');
    expect(mockMessage).not.toContain('tools');
    expect(mockMessage).toContain('user is not supported by mock');
    expect(fake.requests).toHaveLength(0);
  });
});
