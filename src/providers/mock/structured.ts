import type { ModelCall } from '../../contracts/provider.js';
import type { ToolCall, ToolDefinition } from '../../contracts/types.js';
import { mockWords } from './text.js';

/**
 * What the mock answers a call with tools or a JSON response format, so that
 * agent steps and structured-output pipelines can be run and simulated
 * without a key: a call of a tool when the conversation has not yet handed
 * back a tool result, else the answer; a JSON value that fits the request's
 * schema (the same prompt always gives the same value).
 */

type Schema = Record<string, unknown>;

/** Deepest a generated value nests, and most properties or items it writes at one level. */
const MAX_DEPTH = 8;
const MAX_ITEMS = 3;

/** A value that fits `schema`, its strings and counts drawn from `seed`. Handles the JSON Schema that structured output uses. */
export function instanceOf(schema: unknown, seed: number, depth = 0): unknown {
  const s = (typeof schema === 'object' && schema !== null ? schema : {}) as Schema;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[seed % s.enum.length];
  const choices = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(choices) && choices.length > 0) return instanceOf(choices[0], seed, depth);
  if (Array.isArray(s.allOf) && s.allOf.length > 0) return instanceOf(s.allOf[0], seed, depth);
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') ?? 'null') : (s.type ?? inferType(s));
  switch (type) {
    case 'object':
      return depth >= MAX_DEPTH ? {} : objectOf(s, seed, depth);
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 1;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Math.max(min, 2);
      const count = depth >= MAX_DEPTH ? min : Math.min(max, Math.max(min, 1 + (seed % MAX_ITEMS)));
      return Array.from({ length: count }, (_, i) => instanceOf(s.items, mix(seed, i), depth + 1));
    }
    case 'integer':
    case 'number': {
      const min = typeof s.minimum === 'number' ? Math.ceil(s.minimum) : 1;
      const max = typeof s.maximum === 'number' ? Math.floor(s.maximum) : min + 99;
      return min + (seed % Math.max(1, max - min + 1));
    }
    case 'boolean':
      return seed % 2 === 0;
    case 'null':
      return null;
    default: {
      const min = typeof s.minLength === 'number' ? s.minLength : 0;
      const text = mockWords(seed, 4).join(' ');
      return text.length >= min ? text : text.padEnd(min, '.');
    }
  }
}

function inferType(schema: Schema): string {
  if (schema.properties) return 'object';
  if (schema.items) return 'array';
  return 'string';
}

function objectOf(schema: Schema, seed: number, depth: number): Record<string, unknown> {
  const properties = (schema.properties ?? {}) as Record<string, unknown>;
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : Object.keys(properties));
  const value: Record<string, unknown> = {};
  let i = 0;
  for (const [name, property] of Object.entries(properties)) {
    i += 1;
    if (required.has(name)) value[name] = instanceOf(property, mix(seed, i), depth + 1);
  }
  return value;
}

function mix(seed: number, i: number): number {
  return (Math.imul(seed ^ (i * 0x9e3779b1), 0x01000193) >>> 0) % 0x7fffffff;
}

/**
 * The tool the mock calls, if it calls one: the named tool of `toolChoice`,
 * else the first; none when the call allows no tool or the last message
 * already hands back a tool's result (unless a tool is required).
 */
export function mockToolCalls(
  call: Pick<ModelCall, 'tools' | 'toolChoice' | 'messages'>,
  seed: number,
): ToolCall[] | undefined {
  const tools = call.tools;
  if (!tools?.length || call.toolChoice === 'none') return undefined;
  const answered = call.messages[call.messages.length - 1]?.role === 'tool';
  if (answered && call.toolChoice !== 'required' && typeof call.toolChoice !== 'object') return undefined;
  const choice = call.toolChoice;
  const tool: ToolDefinition =
    (typeof choice === 'object' ? tools.find((t) => t.name === choice.name) : undefined) ??
    (tools[0] as ToolDefinition);
  const args = instanceOf(tool.parameters ?? { type: 'object', properties: {} }, seed);
  return [{ id: `call_mock_${seed.toString(36)}`, name: tool.name, arguments: JSON.stringify(args) }];
}

/** The JSON answer for a request that asks for JSON, or undefined for a text answer. */
export function mockJson(
  call: Pick<ModelCall, 'responseFormat'>,
  words: readonly string[],
  seed: number,
): string | undefined {
  const format = call.responseFormat;
  if (format?.type === 'json_schema') return JSON.stringify(instanceOf(format.schema, seed));
  if (format?.type === 'json_object') return JSON.stringify({ answer: words.join(' ') });
  return undefined;
}
