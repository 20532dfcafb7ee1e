import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { thinkingMessage, type AnthropicFake } from './fakes/anthropic-fake.js';
import type { BedrockFake } from './fakes/bedrock-fake.js';
import { startGatewayRig, type GatewayRig } from './fakes/gateway-rig.js';
import { completion, type OpenAiFake } from './fakes/openai-fake.js';

/**
 * Reasoning settings and reasoning answers, through `fanout serve` with the
 * official openai SDK: OpenAI's `reasoning_effort` and Anthropic's `thinking`
 * (as Anthropic's own OpenAI-compatible API takes it) reach each provider in
 * its own form; thinking comes back as `reasoning_content` and
 * `thinking_blocks` (with signatures), and goes back on the next turn first in
 * its assistant turn, as Anthropic requires of a tool conversation.
 */

let rig: GatewayRig;
let fake: OpenAiFake;
let anthropic: AnthropicFake;
let bedrock: BedrockFake;
let client: OpenAI;

beforeAll(async () => {
  rig = await startGatewayRig({ openAiName: 'vllm' });
  ({ openai: fake, anthropic, bedrock, client } = rig);
});
afterAll(() => rig.close());
beforeEach(() => rig.forget());

type Params = OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;
/** The fields fanout's answers add to an OpenAI message, and takes back on the next turn. */
type WithReasoning = { reasoning_content?: string; thinking_blocks?: unknown[] };
/** `thinking`, as Anthropic's OpenAI-compatible API takes it: not in the openai SDK's types, sent as an extra body field. */
const thinking = (budget: number) => ({ thinking: { type: 'enabled', budget_tokens: budget } }) as Pick<Params, never>;

const question: Message = { role: 'user', content: 'Is this diff safe to merge?' };

/** What a streaming client reads: reasoning text, thinking blocks and answer text, each put back together. */
async function readStream(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let reasoning = '';
  let text = '';
  let blocks: unknown;
  let pieces = 0;
  for await (const chunk of stream) {
    const delta = (chunk.choices[0]?.delta ?? {}) as WithReasoning & { content?: string | null };
    if (delta.reasoning_content) {
      reasoning += delta.reasoning_content;
      pieces += 1;
    }
    if (delta.thinking_blocks) blocks = delta.thinking_blocks;
    text += delta.content ?? '';
  }
  return { reasoning, pieces, blocks, text };
}

describe('reasoning through fanout serve', () => {
  it('reaches Anthropic as thinking with its budget and output_config.effort, and its thinking comes back and goes back with its signature', async () => {
    anthropic.script(
      { kind: 'json', body: thinkingMessage('The lock is taken twice.', 'sig-1', 'Not yet: a deadlock.') },
      { kind: 'json', body: thinkingMessage('Fixed now.', 'sig-2', 'Yes.') },
    );
    const ask = { model: 'anthropic:claude-sonnet-4-5', max_tokens: 4000, reasoning_effort: 'high' as const };
    const answer = await client.chat.completions.create({ ...ask, messages: [question], ...thinking(2048) });
    expect(anthropic.requests[0]?.body).toMatchObject({
      max_tokens: 4000,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      output_config: { effort: 'high' },
    });
    const said = answer.choices[0]?.message as OpenAI.Chat.Completions.ChatCompletionMessage & WithReasoning;
    expect(said.content).toBe('Not yet: a deadlock.');
    expect(said.reasoning_content).toBe('The lock is taken twice.');
    expect(said.thinking_blocks).toEqual([
      { type: 'thinking', thinking: 'The lock is taken twice.', signature: 'sig-1' },
    ]);

    // The next turn hands the answer back as the SDK returned it: its thinking goes first in its turn, unchanged.
    const next = [question, said as Message, { role: 'user' as const, content: 'And now?' }];
    await client.chat.completions.create({ ...ask, messages: next, ...thinking(2048) });
    const turns = (anthropic.requests[1]?.body as { messages: Array<{ role: string; content: unknown[] }> }).messages;
    expect(turns[1]).toEqual({
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'The lock is taken twice.', signature: 'sig-1' },
        { type: 'text', text: 'Not yet: a deadlock.' },
      ],
    });
  });

  it('streams Anthropic’s thinking as reasoning_content pieces, its signed blocks before the finish', async () => {
    anthropic.script({
      kind: 'stream',
      deltas: ['Not ', 'yet.'],
      thinking: { pieces: ['The lock ', 'is taken ', 'twice.'], signature: 'sig-3' },
    });
    const stream = await client.chat.completions.create({
      model: 'anthropic:claude-sonnet-4-5',
      messages: [question],
      max_tokens: 4000,
      stream: true,
      ...thinking(1024),
    });
    expect(await readStream(stream)).toEqual({
      reasoning: 'The lock is taken twice.',
      pieces: 3,
      blocks: [{ type: 'thinking', thinking: 'The lock is taken twice.', signature: 'sig-3' }],
      text: 'Not yet.',
    });
  });

  it('reaches Claude on Bedrock as its own thinking field and Nova as reasoningConfig; reasoningContent comes back and goes back', async () => {
    bedrock.script(
      { kind: 'converse', text: 'Not yet.', reasoning: { text: 'The lock is taken twice.', signature: 'sig-b1' } },
      { kind: 'converse', text: 'Yes.' },
      { kind: 'converse', text: 'Fine.' },
      { kind: 'stream', deltas: ['Ok.'], reasoning: { pieces: ['Looks ', 'fine.'], signature: 'sig-b2' } },
    );
    const claude = { model: 'bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0', max_tokens: 4000 };
    const answer = await client.chat.completions.create({ ...claude, messages: [question], ...thinking(2048) });
    expect(bedrock.requests[0]?.body).toMatchObject({
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
      inferenceConfig: { maxTokens: 4000 },
    });
    const said = answer.choices[0]?.message as OpenAI.Chat.Completions.ChatCompletionMessage & WithReasoning;
    expect(said.thinking_blocks).toEqual([
      { type: 'thinking', thinking: 'The lock is taken twice.', signature: 'sig-b1' },
    ]);
    await client.chat.completions.create({ ...claude, messages: [question, said as Message], ...thinking(2048) });
    const turns = (bedrock.requests[1]?.body as { messages: Array<{ content: unknown[] }> }).messages;
    expect(turns[1]?.content).toEqual([
      { reasoningContent: { reasoningText: { text: 'The lock is taken twice.', signature: 'sig-b1' } } },
      { text: 'Not yet.' },
    ]);

    await client.chat.completions.create({
      model: 'bedrock:us.amazon.nova-2-lite-v1:0',
      messages: [question],
      reasoning_effort: 'medium',
    });
    expect(bedrock.requests[2]?.body.additionalModelRequestFields).toEqual({
      reasoningConfig: { type: 'enabled', maxReasoningEffort: 'medium' },
    });

    const stream = await client.chat.completions.create({
      ...claude,
      messages: [question],
      stream: true,
      ...thinking(1024),
    });
    expect(await readStream(stream)).toEqual({
      reasoning: 'Looks fine.',
      pieces: 2,
      blocks: [{ type: 'thinking', thinking: 'Looks fine.', signature: 'sig-b2' }],
      text: 'Ok.',
    });
  });

  it('sends an OpenAI-compatible server the reasoning fields as the client wrote them, and hands back its reasoning text', async () => {
    const reasoned = completion('42') as { choices: Array<{ message: Record<string, unknown> }> };
    (reasoned.choices[0] as { message: Record<string, unknown> }).message.reasoning_content = 'Six times seven.';
    fake.script(
      { kind: 'json', body: reasoned },
      { kind: 'stream', deltas: ['42'], reasoningPieces: ['Six ', 'sevens.'] },
    );
    const ask = { model: 'vllm:qwen3', messages: [question], reasoning_effort: 'low' as const, ...thinking(1500) };
    const answer = await client.chat.completions.create(ask);
    expect(fake.requests[0]?.body).toEqual({
      model: 'qwen3',
      messages: [question],
      reasoning_effort: 'low',
      thinking: { type: 'enabled', budget_tokens: 1500 },
    });
    expect((answer.choices[0]?.message as WithReasoning).reasoning_content).toBe('Six times seven.');
    const streamed = await readStream(await client.chat.completions.create({ ...ask, stream: true }));
    expect(streamed).toMatchObject({ reasoning: 'Six sevens.', pieces: 2, text: '42' });
  });

  it('refuses by name what a provider cannot take, before anything is sent', async () => {
    const refusal = async (params: Params) => {
      const error = await client.chat.completions.create(params).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      return (error as Error).message;
    };
    expect(
      await refusal({ model: 'anthropic:claude-sonnet-4-5', messages: [question], reasoning_effort: 'minimal' }),
    ).toContain('reasoning_effort minimal is not supported by anthropic; give one of low, medium, high, xhigh, max');
    expect(await refusal({ model: 'anthropic:claude-sonnet-4-5', messages: [question], ...thinking(500) })).toContain(
      'thinking.budget_tokens: anthropic takes a budget of at least 1024',
    );
    // Reasoning text without its signature cannot be handed back to Claude.
    const unsigned = { role: 'assistant', content: 'Not yet.', reasoning_content: 'The lock.' } as Message;
    expect(await refusal({ model: 'anthropic:claude-sonnet-4-5', messages: [question, unsigned, question] })).toContain(
      'messages.1.thinking_blocks: anthropic needs each thinking block back with its signature',
    );
    expect(
      await refusal({
        model: 'bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        messages: [question],
        reasoning_effort: 'high',
      }),
    ).toContain(
      'reasoning_effort is not supported by bedrock for bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    );
    expect(await refusal({ model: 'mock:m', messages: [question], reasoning_effort: 'high' })).toContain(
      'reasoning_effort is not supported by mock',
    );
    expect(await refusal({ model: 'anthropic:claude-sonnet-4-5', messages: [{ ...question, name: 'ana' }] })).toContain(
      'messages.0.name is not supported by anthropic',
    );
    expect(anthropic.requests).toHaveLength(0);
    expect(bedrock.requests).toHaveLength(0);
  });
});
