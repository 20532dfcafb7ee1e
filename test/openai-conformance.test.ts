import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { message, thinkingMessage, toolUseMessage, type AnthropicFake } from './fakes/anthropic-fake.js';
import { startGatewayRig, type GatewayRig } from './fakes/gateway-rig.js';
import { completion, tokenLogprob, toolCallCompletion, type OpenAiFake } from './fakes/openai-fake.js';

/**
 * The gateway's answers, stream chunks, model list and error bodies, held to
 * the JSON Schemas of the official openai SDK's types for them
 * (`ChatCompletion`, `ChatCompletionChunk`, `Model`, `ErrorObject`), which
 * the SDK generates from OpenAI's OpenAPI document. Fields fanout adds
 * (`reasoning_content`, `thinking_blocks`) are allowed, as the document
 * allows them; a missing required field, a wrong type or a value outside an
 * enum fails.
 */

const require = createRequire(import.meta.url);
const declaration = (module: string) => require.resolve(`openai/${module}`).replace(/\.js$/, '.d.ts');

function schemaOf(module: string, type: string): object {
  return createGenerator({
    path: declaration(module),
    type,
    skipTypeCheck: true,
    additionalProperties: true,
    expose: 'none',
    topRef: false,
  }).createSchema(type);
}

let check: Record<'completion' | 'chunk' | 'models' | 'error', ValidateFunction>;
let rig: GatewayRig;
let openai: OpenAiFake;
let anthropic: AnthropicFake;
let base: string;

beforeAll(async () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const model = schemaOf('resources/models', 'Model');
  const error = schemaOf('resources/shared', 'ErrorObject');
  check = {
    completion: ajv.compile(schemaOf('resources/chat/completions/completions', 'ChatCompletion')),
    chunk: ajv.compile(schemaOf('resources/chat/completions/completions', 'ChatCompletionChunk')),
    models: ajv.compile({
      type: 'object',
      required: ['object', 'data'],
      properties: { object: { const: 'list' }, data: { type: 'array', items: model } },
    }),
    error: ajv.compile({ type: 'object', required: ['error'], properties: { error } }),
  };
  rig = await startGatewayRig();
  ({ openai, anthropic } = rig);
  base = rig.baseURL.replace(/\/v1$/, '');
}, 60_000);
afterAll(() => rig.close());

const user = [{ role: 'user', content: 'Is this diff safe?' }];
const tools = [{ type: 'function', function: { name: 'read_file', parameters: { type: 'object' } } }];

async function post(body: object, key = 'fk-acme') {
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

/** The data of each server-sent event of a streamed answer, [DONE] left out. */
function events(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('data: ') && event !== 'data: [DONE]')
    .map((event) => JSON.parse(event.slice(6)) as unknown);
}

const failures = (validate: ValidateFunction, value: unknown) => (validate(value) ? [] : validate.errors);

describe('the gateway, held to the openai SDK’s types for OpenAI’s API', () => {
  it('answers completions as ChatCompletion: text, tool calls, n choices, log probabilities, reasoning', async () => {
    const withLogprobs = completion('Hello') as { choices: Array<{ logprobs: unknown }> };
    (withLogprobs.choices[0] as { logprobs: unknown }).logprobs = {
      content: [tokenLogprob('Hello', 0)],
      refusal: null,
    };
    openai.script(
      { kind: 'json', body: completion('Fine.') },
      { kind: 'json', body: toolCallCompletion([{ id: 'call_1', name: 'read_file', arguments: '{}' }]) },
      { kind: 'json', body: completion('A') },
      { kind: 'json', body: withLogprobs },
    );
    anthropic.script(
      { kind: 'json', body: thinkingMessage('The lock.', 'sig-1', 'Not yet.') },
      { kind: 'json', body: toolUseMessage('', { id: 'toolu_1', name: 'read_file', input: {} }) },
      // A finish reason OpenAI has no name for (Anthropic's pause_turn).
      { kind: 'json', body: { ...(message('Paused.') as object), stop_reason: 'pause_turn' } },
    );
    const answers = [
      await post({ model: 'openai:gpt-4o', messages: user }),
      await post({ model: 'openai:gpt-4o', messages: user, tools }),
      await post({ model: 'openai:gpt-4o', messages: user, n: 2 }),
      await post({ model: 'openai:gpt-4o', messages: user, logprobs: true }),
      await post({ model: 'anthropic:claude-sonnet-4-6', messages: user, max_tokens: 4000, reasoning_effort: 'high' }),
      await post({ model: 'anthropic:claude-sonnet-4-6', messages: user, max_tokens: 100, tools }),
      await post({ model: 'anthropic:claude-sonnet-4-6', messages: user, max_tokens: 100 }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
    for (const answer of answers) expect(failures(check.completion, JSON.parse(answer.text))).toEqual([]);
  });

  it('streams chunks as ChatCompletionChunk: text, tool calls, reasoning, usage', async () => {
    openai.script(
      { kind: 'stream', deltas: ['Fi', 'ne.'], logprobs: true },
      {
        kind: 'stream',
        deltas: [],
        toolCalls: [{ id: 'call_2', name: 'read_file', argumentPieces: ['{"pa', 'th":"a"}'] }],
      },
    );
    anthropic.script({ kind: 'stream', deltas: ['Ok.'], thinking: { pieces: ['Lo', 'ck.'], signature: 'sig-2' } });
    const streamed = [
      await post({ model: 'openai:gpt-4o', messages: user, stream: true, stream_options: { include_usage: true } }),
      await post({ model: 'openai:gpt-4o', messages: user, tools, stream: true }),
      await post({ model: 'anthropic:claude-sonnet-4-6', messages: user, max_tokens: 4000, stream: true }),
    ];
    const chunks = streamed.flatMap((s) => events(s.text));
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks) expect(failures(check.chunk, chunk)).toEqual([]);
  });

  it('lists models as a list of Model', async () => {
    const response = await fetch(`${base}/v1/models`, { headers: { authorization: 'Bearer fk-acme' } });
    expect(failures(check.models, await response.json())).toEqual([]);
  });

  it('writes every error as OpenAI’s error body: bad requests, a wrong key, refusals, an answer that fails its check', async () => {
    openai.script({ kind: 'json', body: completion('not json') });
    const errors = [
      await post({ model: 'openai:gpt-4o', messages: [] }),
      await post({ model: 'openai:gpt-4o', messages: user }, 'fk-wrong'),
      await post({ model: 'anthropic:claude-sonnet-4-6', messages: user, presence_penalty: 1 }),
      await post({ model: 'nowhere:m', messages: user }),
      await post({
        model: 'openai:gpt-4o',
        messages: user,
        response_format: { type: 'json_schema', json_schema: { name: 'v', schema: { type: 'object' } } },
      }),
    ];
    expect(errors.map((e) => e.status)).toEqual([400, 401, 400, 400, 502]);
    for (const error of errors) expect(failures(check.error, JSON.parse(error.text))).toEqual([]);
  });
});
