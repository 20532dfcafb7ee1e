import { describe, expect, it } from 'vitest';
import { createEngine } from '../../create-engine.js';
import { ManualClock } from '../../contracts/manual-clock.js';
import type { ModelCall, StreamEvent } from '../../contracts/provider.js';
import { MockProvider } from './mock-provider.js';
import { instanceOf } from './structured.js';

const readFile = {
  name: 'read_file',
  description: 'Read a file of the repository',
  parameters: {
    type: 'object',
    properties: { path: { type: 'string' }, line: { type: 'integer', minimum: 1, maximum: 10 } },
    required: ['path', 'line'],
    additionalProperties: false,
  },
};

const findings = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          severity: { enum: ['low', 'medium', 'high'] },
          file: { type: 'string', minLength: 3 },
          line: { type: ['integer', 'null'] },
          blocking: { type: 'boolean' },
        },
        required: ['severity', 'file', 'line', 'blocking'],
        additionalProperties: false,
      },
    },
    summary: { anyOf: [{ type: 'string' }, { type: 'null' }] },
  },
  required: ['findings', 'summary'],
  additionalProperties: false,
};

const call = (extra: Partial<ModelCall>): ModelCall => ({
  model: 'reviewer',
  messages: [{ role: 'user', content: 'Review src/core/engine.ts' }],
  maxTokens: 1024,
  ...extra,
});
const context = () => ({ clock: new ManualClock(), attempt: 1, signal: new AbortController().signal });

describe('the mock with tools and JSON output', () => {
  it('calls the request’s tool with arguments that fit its schema, then answers once the result is handed back', async () => {
    const mock = new MockProvider();
    const first = await mock.complete(call({ tools: [readFile] }), context());
    expect(first.finishReason).toBe('tool_calls');
    expect(first.text).toBe('');
    const [toolCall] = first.toolCalls ?? [];
    expect(toolCall?.name).toBe('read_file');
    const args = JSON.parse(toolCall?.arguments ?? '') as { path: unknown; line: number };
    expect(Object.keys(args).sort()).toEqual(['line', 'path']);
    expect(typeof args.path).toBe('string');
    expect(Number.isInteger(args.line) && args.line >= 1 && args.line <= 10).toBe(true);

    const answered = await mock.complete(
      call({
        tools: [readFile],
        messages: [
          { role: 'user', content: 'Review src/core/engine.ts' },
          { role: 'assistant', content: '', toolCalls: first.toolCalls },
          { role: 'tool', content: 'export class Engine {}', toolCallId: toolCall?.id as string },
        ],
      }),
      context(),
    );
    expect(answered.finishReason).toBe('stop');
    expect(answered.toolCalls).toBeUndefined();
    expect(answered.text.split(' ').length).toBeGreaterThan(1);
    // No tool when none may be called; the named one when one is named.
    expect((await mock.complete(call({ tools: [readFile], toolChoice: 'none' }), context())).toolCalls).toBeUndefined();
  });

  it('streams its tool call as a name and then its arguments', async () => {
    const events: StreamEvent[] = [];
    for await (const event of new MockProvider().stream(call({ tools: [readFile] }), context())) events.push(event);
    expect(events.map((e) => e.type)).toEqual(['tool-delta', 'tool-delta', 'done']);
    const done = events.at(-1) as Extract<StreamEvent, { type: 'done' }>;
    expect(done.result.toolCalls?.[0]?.name).toBe('read_file');
  });

  it('writes JSON that passes fanout’s own check of the schema, the same for the same prompt', async () => {
    const engine = createEngine({ providers: [new MockProvider()], cache: false });
    try {
      const ask = {
        model: 'mock:reviewer',
        messages: [{ role: 'user' as const, content: 'Review src/core/engine.ts' }],
        responseFormat: { type: 'json_schema' as const, name: 'findings', schema: findings },
      };
      const a = await engine.submit(ask).result();
      const b = await engine.submit(ask).result();
      // result.object is set only when the answer parsed and matched the schema (Ajv).
      expect(a.object).toEqual(JSON.parse(a.text));
      expect(b.text).toBe(a.text);
      const parsed = a.object as { findings: Array<{ severity: string; file: string }>; summary: unknown };
      expect(parsed.findings.length).toBeGreaterThanOrEqual(1);
      for (const finding of parsed.findings) expect(['low', 'medium', 'high']).toContain(finding.severity);
      const streamed = await engine.submit({ ...ask, stream: true }).result();
      expect(streamed.object).toEqual(a.object);
    } finally {
      await engine.close();
    }
  });

  it('fits the schema’s bounds and choices', () => {
    expect(instanceOf({ const: 7 }, 1)).toBe(7);
    expect(instanceOf({ type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4 }, 5)).toHaveLength(4);
    expect(instanceOf({ type: 'string', minLength: 80 }, 3)).toHaveLength(80);
    expect(instanceOf({ type: ['null', 'boolean'] }, 2)).toBe(true);
  });
});
