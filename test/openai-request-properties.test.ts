import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { message, type AnthropicFake } from './fakes/anthropic-fake.js';
import type { BedrockFake } from './fakes/bedrock-fake.js';
import { startGatewayRig, type GatewayRig } from './fakes/gateway-rig.js';
import { completion, type OpenAiFake } from './fakes/openai-fake.js';

/**
 * Every property of OpenAI's chat completions request, sent through `fanout
 * serve` to each provider: it arrives as sent (OpenAI-compatible), arrives
 * translated to the provider's own field, or is refused with a 400 naming it;
 * none is dropped. The property list is read from the official openai SDK's
 * declaration of `ChatCompletionCreateParamsBase`, which is generated from
 * OpenAI's OpenAPI document: a property added there fails this test until
 * fanout decides what to do with it.
 */

/** The request properties the installed openai SDK declares. */
function sdkRequestProperties(): string[] {
  const require = createRequire(import.meta.url);
  const file = require.resolve('openai/resources/chat/completions/completions').replace(/\.js$/, '.d.ts');
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  const names: string[] = [];
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === 'ChatCompletionCreateParamsBase')
      for (const member of node.members) if (member.name && ts.isIdentifier(member.name)) names.push(member.name.text);
  });
  return names;
}

type Body = Record<string, unknown>;
/** What must happen to a property at a provider. */
type Fate =
  | 'as sent'
  | 'refused'
  /** Arrives as the provider's own field: `read` finds it in the upstream body, equal to `is`. */
  | { read: (body: Body) => unknown; is: unknown }
  /** Answered by as many calls as it asks for choices, none of which names it. */
  | 'one call per choice'
  /** Sent as a stream, with usage asked for. */
  | 'streamed';

interface Decision {
  /** The fields a request adds to try the property (with what it needs, such as tools for tool_choice). */
  sample: Body;
  openai: Fate;
  anthropic: Fate;
  bedrock: Fate;
}

const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
const at =
  (...path: string[]) =>
  (body: Body): unknown =>
    path.reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], body);
const config = (field: string) => at('inferenceConfig', field);

/** fanout's decision for each property, by provider. */
const DECISIONS: Record<string, Decision> = {
  messages: {
    sample: {},
    openai: 'as sent',
    anthropic: { read: at('messages'), is: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
    bedrock: { read: at('messages'), is: [{ role: 'user', content: [{ text: 'hi' }] }] },
  },
  model: {
    sample: {},
    openai: 'as sent',
    anthropic: { read: at('model'), is: 'claude-sonnet-4-6' },
    bedrock: { read: () => true, is: true },
  },
  audio: {
    sample: { audio: { voice: 'alloy', format: 'wav' } },
    openai: 'refused',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  frequency_penalty: {
    sample: { frequency_penalty: 0.5 },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  function_call: { sample: { function_call: 'auto' }, openai: 'refused', anthropic: 'refused', bedrock: 'refused' },
  functions: {
    sample: { functions: [{ name: 'lookup', parameters: { type: 'object' } }] },
    openai: 'refused',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  logit_bias: { sample: { logit_bias: { '1734': -100 } }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  logprobs: { sample: { logprobs: true }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  max_completion_tokens: {
    sample: { max_completion_tokens: 300 },
    openai: 'as sent',
    anthropic: { read: at('max_tokens'), is: 300 },
    bedrock: { read: config('maxTokens'), is: 300 },
  },
  max_tokens: {
    sample: { max_tokens: 300 },
    openai: 'as sent',
    anthropic: { read: at('max_tokens'), is: 300 },
    bedrock: { read: config('maxTokens'), is: 300 },
  },
  metadata: { sample: { metadata: { run: 'r-1' } }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  modalities: {
    sample: { modalities: ['text', 'audio'] },
    openai: 'refused',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  moderation: {
    sample: { moderation: { model: 'omni-moderation-latest' } },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  n: {
    sample: { n: 2 },
    openai: 'one call per choice',
    anthropic: 'one call per choice',
    bedrock: 'one call per choice',
  },
  parallel_tool_calls: {
    sample: { tools, parallel_tool_calls: false },
    openai: 'as sent',
    anthropic: { read: at('tool_choice'), is: { type: 'auto', disable_parallel_tool_use: true } },
    bedrock: 'refused',
  },
  prediction: {
    sample: { prediction: { type: 'content', content: 'hello' } },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  presence_penalty: { sample: { presence_penalty: 0.5 }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  prompt_cache_key: {
    sample: { prompt_cache_key: 'reviewers' },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  prompt_cache_options: {
    sample: { prompt_cache_options: { mode: 'explicit', ttl: '30m' } },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  prompt_cache_retention: {
    sample: { prompt_cache_retention: '24h' },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  reasoning_effort: {
    sample: { reasoning_effort: 'high' },
    openai: 'as sent',
    anthropic: { read: at('output_config', 'effort'), is: 'high' },
    bedrock: 'refused',
  },
  response_format: {
    sample: { response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } } },
    openai: 'as sent',
    anthropic: { read: at('output_config', 'format'), is: { type: 'json_schema', schema } },
    bedrock: {
      read: at('outputConfig', 'textFormat', 'structure', 'jsonSchema', 'schema'),
      is: JSON.stringify(schema),
    },
  },
  safety_identifier: {
    sample: { safety_identifier: 'user-7' },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  seed: { sample: { seed: 7 }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  service_tier: { sample: { service_tier: 'flex' }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  stop: {
    sample: { stop: ['END'] },
    openai: 'as sent',
    anthropic: { read: at('stop_sequences'), is: ['END'] },
    bedrock: { read: config('stopSequences'), is: ['END'] },
  },
  store: { sample: { store: true }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  stream: { sample: { stream: true }, openai: 'streamed', anthropic: 'streamed', bedrock: 'streamed' },
  stream_options: {
    sample: { stream: true, stream_options: { include_usage: true } },
    openai: 'streamed',
    anthropic: 'streamed',
    bedrock: 'streamed',
  },
  temperature: {
    sample: { temperature: 0.3 },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: { read: config('temperature'), is: 0.3 },
  },
  tool_choice: {
    sample: { tools, tool_choice: 'required' },
    openai: 'as sent',
    anthropic: { read: at('tool_choice'), is: { type: 'any' } },
    bedrock: { read: at('toolConfig', 'toolChoice'), is: { any: {} } },
  },
  tools: {
    sample: { tools },
    openai: 'as sent',
    anthropic: { read: at('tools'), is: [{ name: 'lookup', input_schema: { type: 'object', properties: {} } }] },
    bedrock: {
      read: at('toolConfig', 'tools'),
      is: [{ toolSpec: { name: 'lookup', inputSchema: { json: { type: 'object', properties: {} } } } }],
    },
  },
  top_logprobs: {
    sample: { logprobs: true, top_logprobs: 2 },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
  top_p: {
    sample: { top_p: 0.9 },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: { read: config('topP'), is: 0.9 },
  },
  user: {
    sample: { user: 'user-7' },
    openai: 'as sent',
    anthropic: { read: at('metadata', 'user_id'), is: 'user-7' },
    bedrock: 'refused',
  },
  verbosity: { sample: { verbosity: 'low' }, openai: 'as sent', anthropic: 'refused', bedrock: 'refused' },
  web_search_options: {
    sample: { web_search_options: { search_context_size: 'low' } },
    openai: 'as sent',
    anthropic: 'refused',
    bedrock: 'refused',
  },
};

let rig: GatewayRig;
let openai: OpenAiFake;
let anthropic: AnthropicFake;
let bedrock: BedrockFake;
let baseURL: string;

beforeAll(async () => {
  rig = await startGatewayRig();
  ({ openai, anthropic, bedrock, baseURL } = rig);
});
afterAll(() => rig.close());

const MODELS = {
  openai: 'openai:gpt-4o',
  anthropic: 'anthropic:claude-sonnet-4-6',
  bedrock: 'bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0',
};
type Provider = keyof typeof MODELS;

/** Sends `fields` through fanout serve to `provider` as a raw body; returns the status, the error message and the bodies upstream received. */
async function send(provider: Provider, fields: Body) {
  const streamed = fields.stream === true;
  // An answer that passes fanout's check of a JSON Schema response format.
  const text = fields.response_format ? '{"ok":true}' : 'ok';
  openai.script(streamed ? { kind: 'stream', deltas: [text] } : { kind: 'json', body: completion(text) });
  anthropic.script(streamed ? { kind: 'stream', deltas: [text] } : { kind: 'json', body: message(text) });
  bedrock.script(streamed ? { kind: 'stream', deltas: [text] } : { kind: 'converse', text });
  const received = { openai: openai.requests, anthropic: anthropic.requests, bedrock: bedrock.requests }[provider];
  received.length = 0;
  const response = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer fk-acme', 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODELS[provider], messages: [{ role: 'user', content: 'hi' }], ...fields }),
  });
  const answer = await response.text();
  const error = response.status === 200 ? '' : (JSON.parse(answer) as { error: { message: string } }).error.message;
  return { status: response.status, error, bodies: received.map((r) => r.body) };
}

describe('every property of an OpenAI chat completions request, through fanout serve', () => {
  it('has a decision for each property the openai SDK declares, and no decision for one it does not', () => {
    const declared = sdkRequestProperties();
    expect(declared.length).toBeGreaterThan(30);
    expect(Object.keys(DECISIONS).sort()).toEqual([...declared].sort());
  });

  for (const provider of Object.keys(MODELS) as Provider[])
    it(`arrives at ${provider} as sent or translated, or is refused by name: none dropped`, async () => {
      const outcomes: Record<string, unknown> = {};
      const wanted: Record<string, unknown> = {};
      for (const [property, decision] of Object.entries(DECISIONS)) {
        const fate = decision[provider];
        const { status, error, bodies } = await send(provider, decision.sample);
        if (fate === 'refused') {
          outcomes[property] = { status, names: error.includes(property), sent: bodies.length };
          wanted[property] = { status: 400, names: true, sent: 0 };
        } else if (fate === 'as sent') {
          const { model: _model, ...body } = bodies[0] ?? {};
          outcomes[property] = { status, body };
          wanted[property] = { status: 200, body: { messages: [{ role: 'user', content: 'hi' }], ...decision.sample } };
        } else if (fate === 'one call per choice') {
          outcomes[property] = { status, calls: bodies.length, named: bodies.some((b) => property in b) };
          wanted[property] = { status: 200, calls: 2, named: false };
        } else if (fate === 'streamed') {
          const asked = bodies[0] ?? {};
          outcomes[property] = { status, streamed: provider === 'bedrock' || asked.stream === true };
          wanted[property] = { status: 200, streamed: true };
        } else {
          outcomes[property] = { status, value: bodies[0] ? fate.read(bodies[0]) : undefined };
          wanted[property] = { status: 200, value: fate.is };
        }
      }
      expect(outcomes).toEqual(wanted);
    });

  it('streams to an OpenAI-compatible provider with usage asked for, whatever the client asked', async () => {
    const { bodies } = await send('openai', { stream: true });
    expect(bodies[0]).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const { bodies: streamedToBedrock } = await send('bedrock', { stream: true });
    expect(bedrock.requests[0]?.path).toMatch(/converse-stream$/);
    expect(streamedToBedrock).toHaveLength(1);
  });
});
