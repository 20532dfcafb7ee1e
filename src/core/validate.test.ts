import { describe, expect, it } from 'vitest';
import { seededRandom } from '../contracts/random.js';
import { isPlainValidRequest, taskRequestSchema, validateTaskRequest } from './validate.js';

const base = { model: 'mock:m', messages: [{ role: 'user', content: 'hi' }] };

describe('request validation', () => {
  it('names each bad field, what was expected and what came', () => {
    expect(() => validateTaskRequest({ ...base, maxTokens: 1.5 })).toThrow('maxTokens: expected a whole number');
    expect(() => validateTaskRequest({ ...base, temperature: 'hot' })).toThrow(
      /temperature: .*expected number, received string/,
    );
    expect(() => validateTaskRequest({ ...base, messages: [{ role: 'robot', content: 'x' }] })).toThrow(
      /messages\.0\.role/,
    );
    expect(() => validateTaskRequest({ ...base, maxTokens: 0, priority: 'high' })).toThrow(/maxTokens.*; priority/);
    expect(() => validateTaskRequest(null)).toThrow(/\(root\)/);
  });

  it('refuses an image anywhere but a user message, where no provider would carry it', () => {
    const image = { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=' };
    for (const role of ['assistant', 'system', 'tool'])
      expect(() =>
        validateTaskRequest({
          ...base,
          messages: [{ role, content: [image], ...(role === 'tool' ? { toolCallId: 'c' } : {}) }],
        }),
      ).toThrow('messages.0.content: images and documents are taken in user messages only');
    expect(validateTaskRequest({ ...base, messages: [{ role: 'user', content: [image] }] }).messages).toHaveLength(1);
  });

  it('takes the fast path only for requests the schema accepts', () => {
    // Mutations of a valid request, each of which may or may not stay valid.
    const random = seededRandom(42);
    const values: unknown[] = [
      undefined,
      null,
      0,
      -1,
      1,
      1.5,
      2,
      3,
      'x',
      '',
      true,
      [],
      ['a'],
      [1],
      {},
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    const fields = [...Object.keys(taskRequestSchema.shape), 'max_tokens', 'extra'];
    let fast = 0;
    for (let i = 0; i < 20_000; i++) {
      const request: Record<string, unknown> = { ...base, messages: [{ role: 'user', content: 'hi' }] };
      const changes = 1 + Math.floor(random.next() * 3);
      for (let c = 0; c < changes; c++) {
        const field = fields[Math.floor(random.next() * fields.length)] as string;
        const value = values[Math.floor(random.next() * values.length)];
        if (field === 'messages' && random.next() < 0.5) {
          request.messages = [
            {
              role: ['user', 'assistant', 'system', 'tool'][Math.floor(random.next() * 4)],
              content: random.next() < 0.8 ? 'x' : 5,
            },
          ];
        } else if (field === 'model' && random.next() < 0.5) {
          request.model = ['mock:m', 'mock:', ':m', 'gpt-4o', 'openai:gpt-4o', 'a b:c', 'mock:a\nb'][
            Math.floor(random.next() * 7)
          ];
        } else {
          request[field] = value;
        }
      }
      if (isPlainValidRequest(request)) {
        fast += 1;
        expect(taskRequestSchema.safeParse(request).success, JSON.stringify(request)).toBe(true);
      }
    }
    expect(fast).toBeGreaterThan(1000);
  });

  it('returns the caller’s object on the fast path and zod’s copy otherwise', () => {
    const plain = { ...base };
    expect(validateTaskRequest(plain)).toBe(plain);
    const withOptions = { ...base, providerOptions: { reasoning: 'low' } };
    const checked = validateTaskRequest(withOptions);
    expect(checked).not.toBe(withOptions);
    expect(checked).toEqual(withOptions);
  });
});
