import { describe, expect, it } from 'vitest';
import type { TaskRequest } from '../contracts/types.js';
import { cacheKey, canonicalJson } from './cache-key.js';

const base: TaskRequest = {
  model: 'mock:m',
  system: 'be brief',
  messages: [
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: 'hi' },
    { role: 'user', content: 'review this' },
  ],
  maxTokens: 100,
  temperature: 0,
  topP: 1,
  stop: ['END'],
  seed: 7,
  providerOptions: { reasoning: { effort: 'low' }, format: 'json' },
};
const key = (request: TaskRequest, tenant = 'acme', maxTokens = request.maxTokens ?? 1024) =>
  cacheKey(tenant, request, maxTokens);

describe('cache keys', () => {
  it('change when any field that can change the answer changes', () => {
    const variants: TaskRequest[] = [
      { ...base, model: 'mock:other' },
      { ...base, model: 'openai:m' },
      { ...base, system: 'be thorough' },
      { ...base, system: undefined },
      { ...base, messages: [...base.messages.slice(0, 2), { role: 'user', content: 'review that' }] },
      { ...base, messages: [{ role: 'assistant', content: 'hello' }, ...base.messages.slice(1)] },
      { ...base, messages: [base.messages[1]!, base.messages[0]!, base.messages[2]!] },
      { ...base, messages: base.messages.slice(1) },
      { ...base, maxTokens: 101 },
      { ...base, temperature: 0.5 },
      { ...base, topP: 0.9 },
      { ...base, stop: ['STOP'] },
      { ...base, stop: undefined },
      { ...base, seed: 8 },
      { ...base, providerOptions: { reasoning: { effort: 'high' }, format: 'json' } },
      { ...base, providerOptions: undefined },
      // What a real application sends beyond text: each changes the answer.
      { ...base, tools: [{ name: 'read_file', parameters: { type: 'object' } }] },
      { ...base, tools: [{ name: 'read_file', parameters: { type: 'object' } }], toolChoice: 'required' },
      { ...base, tools: [{ name: 'read_file' }], parallelToolCalls: false },
      { ...base, responseFormat: { type: 'json_object' } },
      { ...base, responseFormat: { type: 'json_schema', name: 'f', schema: { type: 'object' } } },
      { ...base, checkOutput: false, responseFormat: { type: 'json_object' } },
      { ...base, passthrough: { logit_bias: { '1734': -100 } } },
      { ...base, passthrough: { presence_penalty: 0.5 } },
      { ...base, maxTokensField: 'max_completion_tokens' },
      {
        ...base,
        messages: [
          ...base.messages.slice(0, 1),
          { role: 'assistant', content: 'hi', toolCalls: [{ id: 'c1', name: 'read_file', arguments: '{}' }] },
          { role: 'tool', content: 'review this', toolCallId: 'c1' },
        ],
      },
      {
        ...base,
        messages: [
          ...base.messages.slice(0, 1),
          { role: 'assistant', content: 'hi', toolCalls: [{ id: 'c1', name: 'read_file', arguments: '{}' }] },
          { role: 'tool', content: 'review this', toolCallId: 'c2' },
        ],
      },
      { ...base, messages: [{ role: 'user', content: [{ type: 'image', url: 'https://example.com/a.png' }] }] },
      { ...base, messages: [{ role: 'user', content: [{ type: 'image', url: 'https://example.com/b.png' }] }] },
    ];
    const keys = new Set([key(base), ...variants.map((v) => key(v))]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it('count the default max tokens a request without one is sent with', () => {
    const { maxTokens: _unset, ...withoutMax } = base;
    expect(key(withoutMax, 'acme', 1024)).not.toBe(key(withoutMax, 'acme', 2048));
    // An OpenAI-compatible provider is sent no ceiling when the request named none: a different call.
    expect(key(withoutMax, 'acme', 100)).not.toBe(key(base));
  });

  it('ignore what only changes how fanout runs the call', () => {
    const same: TaskRequest[] = [
      { ...base, priority: 9 },
      { ...base, label: 'line-7' },
      { ...base, maxAttempts: 1, attemptTimeoutMs: 5, deadlineMs: 10 },
      { ...base, stream: true },
      { ...base, cache: { ttlMs: 5 } },
      { ...base, providerOptions: { format: 'json', reasoning: { effort: 'low' } } },
      { ...base, cacheSystem: true },
      { ...base, messages: base.messages.map((m) => ({ ...m, cache: true })) },
    ];
    for (const request of same) expect(key(request)).toBe(key(base));
  });

  it('never match across tenants', () => {
    expect(key(base, 'acme')).not.toBe(key(base, 'globex'));
    // A tenant name cannot be forged from another tenant's request text.
    expect(cacheKey('a', base, 100)).not.toBe(cacheKey('a\u0000', base, 100));
  });

  it('are written in canonical JSON: object keys sorted at every depth, undefined dropped', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } })).toBe(
      '{"a":{"d":[1,{"e":3,"f":2}]},"b":1}',
    );
  });
});
