import type {
  ChatCompletionAssistantMessageParam,
  ChatCompletionContentPart,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
} from 'openai/resources/chat/completions';
import type { ResponseFormatJSONSchema } from 'openai/resources/shared';
import { z } from 'zod';
import { thinkingParam } from '../providers/reasoning.js';
import type {
  ChatMessage,
  ContentPart,
  ModelRequest,
  ReasoningBlock,
  ReasoningSettings,
  ResponseFormat,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../contracts/types.js';

/**
 * The parts of an OpenAI chat request beyond plain text, both ways: content
 * parts (text, images and files), tools and tool choice, assistant tool calls, tool
 * results and the response format, read from a body into fanout's neutral
 * request and written back for an OpenAI-compatible provider.
 */

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.strictObject({
  type: z.literal('image_url'),
  image_url: z.strictObject({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const textContent = z.union([z.string(), z.array(textPart)]);
const filePart = z.strictObject({
  type: z.literal('file'),
  file: z.strictObject({
    file_data: z.string().min(1).optional(),
    file_id: z.string().min(1).optional(),
    filename: z.string().min(1).optional(),
  }),
});
const userContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [textPart, imagePart, filePart]))]);
/** Reasoning blocks of an earlier answer, in the form fanout's answers give them (`thinking_blocks`, as LiteLLM names them). */
const thinkingBlock = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().min(1).optional() }),
  z.strictObject({ type: z.literal('redacted_thinking'), data: z.string().min(1) }),
]);
const toolCall = z.strictObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1), arguments: z.string() }),
});

export const chatMessageSchema = z.union([
  z.strictObject({ role: z.enum(['system', 'developer']), content: textContent }),
  z.strictObject({ role: z.literal('user'), content: userContent, name: z.string().min(1).max(64).optional() }),
  z.strictObject({
    role: z.literal('assistant'),
    content: textContent.nullable().optional(),
    name: z.string().min(1).max(64).optional(),
    tool_calls: z.array(toolCall).optional(),
    refusal: z.string().nullable().optional(),
    reasoning_content: z.string().nullable().optional(),
    thinking_blocks: z.array(thinkingBlock).nullable().optional(),
  }),
  z.strictObject({ role: z.literal('tool'), content: textContent, tool_call_id: z.string().min(1) }),
]);

export type ChatBodyMessage = z.infer<typeof chatMessageSchema>;

const jsonObject = z.record(z.string(), z.unknown());

/** The reasoning fields of a body: OpenAI's `reasoning_effort`, and `thinking` as Anthropic's own OpenAI-compatible API takes it. */
export const reasoningShape = {
  reasoning_effort: z
    .string()
    .regex(/^[a-z_]{1,32}$/, 'expected an effort such as low, medium or high')
    .nullable()
    .optional(),
  thinking: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('enabled'), budget_tokens: z.number().int().positive() }),
      z.strictObject({ type: z.literal('adaptive') }),
      z.strictObject({ type: z.literal('disabled') }),
    ])
    .optional(),
};

type ReasoningFields = { [K in keyof typeof reasoningShape]?: z.infer<(typeof reasoningShape)[K]> };

/** A body's reasoning fields as fanout's. */
export function reasoningFromChat(body: ReasoningFields): Partial<ModelRequest> {
  const reasoning: ReasoningSettings = {};
  if (body.reasoning_effort != null) reasoning.effort = body.reasoning_effort;
  const thinking = body.thinking;
  if (thinking)
    reasoning.thinking =
      thinking.type === 'enabled'
        ? { budgetTokens: thinking.budget_tokens }
        : thinking.type === 'adaptive'
          ? 'adaptive'
          : 'off';
  return reasoning.effort !== undefined || reasoning.thinking !== undefined ? { reasoning } : {};
}

/** fanout's reasoning settings as an OpenAI-compatible request's fields. */
export function reasoningToChat(reasoning: ReasoningSettings | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (reasoning?.effort !== undefined) out.reasoning_effort = reasoning.effort;
  // The field as Anthropic's own OpenAI-compatible API takes it: Anthropic's form.
  if (reasoning?.thinking !== undefined) out.thinking = thinkingParam(reasoning.thinking);
  return out;
}

/** Reasoning blocks in the form fanout's answers give them, and takes them back (`thinking_blocks`). */
export function thinkingBlocksToChat(blocks: readonly ReasoningBlock[]): Array<z.infer<typeof thinkingBlock>> {
  return blocks.map((b) =>
    b.type === 'redacted'
      ? { type: 'redacted_thinking' as const, data: b.data }
      : { type: 'thinking' as const, thinking: b.text, ...(b.signature ? { signature: b.signature } : {}) },
  );
}

/** The reasoning of an assistant message: its thinking blocks, else its reasoning text as one block. */
function reasoningFrom(message: {
  reasoning_content?: string | null;
  thinking_blocks?: Array<z.infer<typeof thinkingBlock>> | null;
}): ReasoningBlock[] | undefined {
  if (message.thinking_blocks?.length)
    return message.thinking_blocks.map((b) =>
      b.type === 'redacted_thinking'
        ? { type: 'redacted', data: b.data }
        : { type: 'thinking', text: b.thinking, ...(b.signature ? { signature: b.signature } : {}) },
    );
  return message.reasoning_content ? [{ type: 'thinking', text: message.reasoning_content }] : undefined;
}

/** The tool fields of a body, as OpenAI names them. */
export const toolShape = {
  tools: z
    .array(
      z.strictObject({
        type: z.literal('function'),
        function: z.strictObject({
          name: z.string().min(1),
          description: z.string().optional(),
          parameters: jsonObject.optional(),
          strict: z.boolean().nullable().optional(),
        }),
      }),
    )
    .optional(),
  tool_choice: z
    .union([
      z.enum(['auto', 'none', 'required']),
      z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string().min(1) }) }),
    ])
    .optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('text') }),
      z.strictObject({ type: z.literal('json_object') }),
      z.strictObject({
        type: z.literal('json_schema'),
        json_schema: z.strictObject({
          name: z.string().min(1),
          description: z.string().optional(),
          schema: jsonObject.optional(),
          strict: z.boolean().nullable().optional(),
        }),
      }),
    ])
    .optional(),
};

type ToolFields = { [K in keyof typeof toolShape]?: z.infer<(typeof toolShape)[K]> };

function partsFrom(
  content:
    | string
    | ReadonlyArray<{
        type: string;
        text?: string;
        image_url?: { url: string; detail?: 'auto' | 'low' | 'high' };
        file?: { file_data?: string; file_id?: string; filename?: string };
      }>,
): string | ContentPart[] {
  if (typeof content === 'string') return content;
  const parts: ContentPart[] = [];
  for (const part of content) {
    if (part.type === 'text') parts.push({ type: 'text', text: part.text ?? '' });
    else if (part.image_url) {
      const image: ContentPart = { type: 'image', url: part.image_url.url };
      if (part.image_url.detail) image.detail = part.image_url.detail;
      parts.push(image);
    } else if (part.file) {
      const file: Extract<ContentPart, { type: 'file' }> = { type: 'file' };
      if (part.file.file_data !== undefined) file.url = part.file.file_data;
      if (part.file.file_id !== undefined) file.fileId = part.file.file_id;
      if (part.file.filename !== undefined) file.filename = part.file.filename;
      parts.push(file);
    }
  }
  return parts;
}

/** OpenAI messages as fanout's: system and developer messages become the system prompt. */
export function messagesFromChat(raw: readonly ChatBodyMessage[]): { system?: string; messages: ChatMessage[] } {
  const systems: string[] = [];
  const messages: ChatMessage[] = [];
  for (const message of raw) {
    if (message.role === 'system' || message.role === 'developer') {
      const content = message.content;
      systems.push(typeof content === 'string' ? content : content.map((part) => part.text).join(''));
    } else if (message.role === 'assistant') {
      const out: ChatMessage = { role: 'assistant', content: partsFrom(message.content ?? '') };
      if (message.tool_calls?.length)
        out.toolCalls = message.tool_calls.map((c) => ({
          id: c.id,
          name: c.function.name,
          arguments: c.function.arguments,
        }));
      const reasoning = reasoningFrom(message);
      if (reasoning) out.reasoning = reasoning;
      if (message.name !== undefined) out.name = message.name;
      messages.push(out);
    } else if (message.role === 'tool') {
      messages.push({ role: 'tool', content: partsFrom(message.content), toolCallId: message.tool_call_id });
    } else {
      const out: ChatMessage = { role: 'user', content: partsFrom(message.content) };
      if ('name' in message && message.name !== undefined) out.name = message.name;
      messages.push(out);
    }
  }
  return systems.length > 0 ? { system: systems.join('\n\n'), messages } : { messages };
}

/** A body's tool and response-format fields as fanout's. */
export function toolsFromChat(body: ToolFields): Partial<ModelRequest> {
  const fields: Partial<ModelRequest> = {};
  if (body.tools)
    fields.tools = body.tools.map(({ function: f }) => {
      const tool: ToolDefinition = { name: f.name };
      if (f.description !== undefined) tool.description = f.description;
      if (f.parameters !== undefined) tool.parameters = f.parameters;
      if (f.strict != null) tool.strict = f.strict;
      return tool;
    });
  const choice = body.tool_choice;
  if (choice !== undefined) fields.toolChoice = typeof choice === 'string' ? choice : { name: choice.function.name };
  if (body.parallel_tool_calls !== undefined) fields.parallelToolCalls = body.parallel_tool_calls;
  const format = body.response_format;
  if (format?.type === 'json_schema') {
    const { name, description, schema, strict } = format.json_schema;
    const out: ResponseFormat = { type: 'json_schema', name, schema: schema ?? {} };
    if (description !== undefined) out.description = description;
    if (strict != null) out.strict = strict;
    fields.responseFormat = out;
  } else if (format) {
    fields.responseFormat = { type: format.type };
  }
  return fields;
}

function partsToChat(content: string | readonly ContentPart[]): string | ChatCompletionContentPart[] {
  if (typeof content === 'string') return content;
  return content.map((part): ChatCompletionContentPart => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    if (part.type === 'image')
      return { type: 'image_url', image_url: part.detail ? { url: part.url, detail: part.detail } : { url: part.url } };
    const file: { file_data?: string; file_id?: string; filename?: string } = {};
    if (part.url !== undefined) file.file_data = part.url;
    if (part.fileId !== undefined) file.file_id = part.fileId;
    if (part.filename !== undefined) file.filename = part.filename;
    return { type: 'file', file };
  });
}

/** fanout's tool calls as OpenAI's. */
export function toolCallsToChat(calls: readonly ToolCall[]): ChatCompletionMessageToolCall[] {
  return calls.map((c) => ({
    id: c.id,
    type: 'function' as const,
    function: { name: c.name, arguments: c.arguments },
  }));
}

type TextPart = Extract<ContentPart, { type: 'text' }>;

/** A non-user message's content: text only (validation takes images in user messages alone). */
function textOnly(content: string | readonly ContentPart[]): string | TextPart[] {
  return typeof content === 'string' ? content : content.filter((p): p is TextPart => p.type === 'text');
}

/**
 * An assistant message's reasoning as it came: `thinking_blocks` when any
 * block carries a signature or was redacted, else its text as `reasoning_content`.
 */
function reasoningOnMessage(blocks: readonly ReasoningBlock[]): Record<string, unknown> {
  if (blocks.some((b) => b.type === 'redacted' || b.signature !== undefined))
    return { thinking_blocks: thinkingBlocksToChat(blocks) };
  return { reasoning_content: blocks.map((b) => (b.type === 'thinking' ? b.text : '')).join('') };
}

/** A fanout call's system prompt and messages as OpenAI messages. */
export function messagesToChat(call: {
  system?: string;
  messages: readonly ChatMessage[];
}): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [];
  if (call.system) messages.push({ role: 'system', content: call.system });
  for (const m of call.messages) {
    if (m.role === 'tool') {
      const content = textOnly(m.content);
      messages.push({ role: 'tool', tool_call_id: m.toolCallId ?? '', content });
    } else if (m.role === 'assistant') {
      const content = textOnly(m.content);
      const message: ChatCompletionAssistantMessageParam & Record<string, unknown> = m.toolCalls?.length
        ? { role: 'assistant', content: content === '' ? null : content, tool_calls: toolCallsToChat(m.toolCalls) }
        : { role: 'assistant', content };
      if (m.name !== undefined) message.name = m.name;
      if (m.reasoning?.length) Object.assign(message, reasoningOnMessage(m.reasoning));
      messages.push(message);
    } else if (m.role === 'system') {
      messages.push({
        role: 'system',
        content: textOnly(m.content),
      });
    } else {
      messages.push(
        m.name !== undefined
          ? { role: 'user', content: partsToChat(m.content), name: m.name }
          : { role: 'user', content: partsToChat(m.content) },
      );
    }
  }
  return messages;
}

/** fanout's tool and response-format fields as an OpenAI request's. */
export function toolsToChat(
  call: Pick<ModelRequest, 'tools' | 'toolChoice' | 'parallelToolCalls' | 'responseFormat'>,
): {
  tools?: ChatCompletionTool[];
  tool_choice?: ChatCompletionToolChoiceOption;
  parallel_tool_calls?: boolean;
  response_format?: { type: 'text' } | { type: 'json_object' } | ResponseFormatJSONSchema;
} {
  const out: ReturnType<typeof toolsToChat> = {};
  if (call.tools)
    out.tools = call.tools.map((t) => ({
      type: 'function' as const,
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        ...(t.parameters !== undefined ? { parameters: t.parameters } : {}),
        ...(t.strict !== undefined ? { strict: t.strict } : {}),
      },
    }));
  const choice: ToolChoice | undefined = call.toolChoice;
  if (choice !== undefined)
    out.tool_choice = typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
  if (call.parallelToolCalls !== undefined) out.parallel_tool_calls = call.parallelToolCalls;
  const format = call.responseFormat;
  if (format?.type === 'json_schema') {
    out.response_format = {
      type: 'json_schema',
      json_schema: {
        name: format.name,
        schema: format.schema,
        ...(format.description !== undefined ? { description: format.description } : {}),
        ...(format.strict !== undefined ? { strict: format.strict } : {}),
      },
    };
  } else if (format) {
    out.response_format = { type: format.type };
  }
  return out;
}

/** An OpenAI answer's tool calls as fanout's. */
export function toolCallsFromChat(
  calls: readonly ChatCompletionMessageToolCall[] | undefined | null,
): ToolCall[] | undefined {
  if (!calls?.length) return undefined;
  const out: ToolCall[] = [];
  for (const c of calls)
    if (c.type === 'function') out.push({ id: c.id, name: c.function.name, arguments: c.function.arguments });
  return out.length > 0 ? out : undefined;
}
