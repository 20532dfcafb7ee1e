import type Anthropic from '@anthropic-ai/sdk';
import type { ModelCall } from '../../contracts/provider.js';
import {
  textOf,
  type ChatMessage,
  type ContentPart,
  type ModelResult,
  type ReasoningBlock,
  type ToolCall,
} from '../../contracts/types.js';
import { documentData, nativeFormRefusals } from '../refusals.js';
import { MIN_THINKING_BUDGET, thinkingParam, unsignedThinkingRefusals } from '../reasoning.js';

/**
 * fanout's request in Anthropic's Messages form, and Anthropic's answer back:
 * text and image parts as blocks (an image by URL, or base64 from a `data:`
 * URL), assistant tool calls as `tool_use` blocks, tool results as
 * `tool_result` blocks in one user turn, tools with their input schema, tool
 * choice (`required` is `any`; parallel calls off is
 * `disable_parallel_tool_use`), a JSON Schema response format as
 * `output_config.format`, Anthropic's own structured output, and reasoning
 * as `thinking` and `output_config.effort`, with the thinking blocks of
 * earlier answers handed back first in their turns, as Anthropic requires.
 */

type Block = Anthropic.ContentBlockParam;
type MessageParam = Anthropic.MessageParam;

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const DATA_URL = /^data:(image\/[a-z+.-]+);base64,([A-Za-z0-9+/=\s]+)$/i;

function cacheMark<T extends Block>(block: T, cache: boolean | undefined): T {
  return cache ? { ...block, cache_control: { type: 'ephemeral' } } : block;
}

function imageBlock(part: Extract<ContentPart, { type: 'image' }>): Anthropic.ImageBlockParam {
  const data = DATA_URL.exec(part.url);
  if (data)
    return {
      type: 'image',
      source: {
        type: 'base64',
        media_type: (data[1] as string).toLowerCase() as Anthropic.Base64ImageSource['media_type'],
        data: (data[2] as string).replace(/\s/g, ''),
      },
    };
  return { type: 'image', source: { type: 'url', url: part.url } };
}

/** A PDF as a base64 document block, plain text as a text one; the file name as its title. */
function documentBlock(part: Extract<ContentPart, { type: 'file' }>): Anthropic.DocumentBlockParam {
  const { mediaType, base64 } = documentData(part) as NonNullable<ReturnType<typeof documentData>>;
  const source: Anthropic.DocumentBlockParam['source'] =
    mediaType === 'application/pdf'
      ? { type: 'base64', media_type: 'application/pdf', data: base64 }
      : { type: 'text', media_type: 'text/plain', data: Buffer.from(base64, 'base64').toString('utf8') };
  return part.filename === undefined
    ? { type: 'document', source }
    : { type: 'document', source, title: part.filename };
}

function contentBlocks(content: ChatMessage['content']): Block[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  return content.map((part): Block =>
    part.type === 'text'
      ? { type: 'text', text: part.text }
      : part.type === 'image'
        ? imageBlock(part)
        : documentBlock(part),
  );
}

function toolUse(call: ToolCall): Anthropic.ToolUseBlockParam {
  return { type: 'tool_use', id: call.id, name: call.name, input: JSON.parse(call.arguments) as unknown };
}

function thinkingBlocks(reasoning: ChatMessage['reasoning']): Block[] {
  if (!reasoning) return [];
  return reasoning.map((b): Block =>
    b.type === 'redacted'
      ? { type: 'redacted_thinking', data: b.data }
      : { type: 'thinking', thinking: b.text, signature: b.signature ?? '' },
  );
}

/** The conversation as Anthropic's turns: tool results join one user turn, as Anthropic requires. */
export function anthropicMessages(messages: readonly ChatMessage[]): MessageParam[] {
  const turns: MessageParam[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    let role: 'user' | 'assistant' = message.role === 'assistant' ? 'assistant' : 'user';
    let blocks: Block[];
    if (message.role === 'tool') {
      const result: Anthropic.ToolResultBlockParam = {
        type: 'tool_result',
        tool_use_id: message.toolCallId ?? '',
        content: textOf(message.content),
      };
      blocks = [result];
      role = 'user';
    } else {
      // Thinking blocks come first in an assistant turn, unchanged, as Anthropic requires.
      blocks = [...thinkingBlocks(message.reasoning), ...contentBlocks(message.content)];
      if (message.toolCalls) for (const call of message.toolCalls) blocks.push(toolUse(call));
    }
    const last = blocks.length - 1;
    if (message.cache && last >= 0) blocks[last] = cacheMark(blocks[last] as Block, true);
    const previous = turns[turns.length - 1];
    if (message.role === 'tool' && previous?.role === 'user' && Array.isArray(previous.content))
      previous.content.push(...blocks);
    else turns.push({ role, content: blocks });
  }
  return turns;
}

/** Tools, tool choice and the response format, as Anthropic's request fields. */
export function anthropicToolFields(
  call: Pick<ModelCall, 'tools' | 'toolChoice' | 'parallelToolCalls' | 'responseFormat'>,
): Partial<Anthropic.MessageCreateParamsNonStreaming> {
  const fields: Partial<Anthropic.MessageCreateParamsNonStreaming> = {};
  if (call.tools)
    fields.tools = call.tools.map((tool) => ({
      name: tool.name,
      input_schema: (tool.parameters ?? { type: 'object', properties: {} }) as Anthropic.Tool.InputSchema,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      ...(tool.strict !== undefined ? { strict: tool.strict } : {}),
    }));
  const choice = call.toolChoice;
  const noParallel = call.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === 'none') fields.tool_choice = { type: 'none' };
  else if (choice === 'required') fields.tool_choice = { type: 'any', ...noParallel };
  else if (typeof choice === 'object') fields.tool_choice = { type: 'tool', name: choice.name, ...noParallel };
  else if (choice === 'auto' || call.parallelToolCalls === false) fields.tool_choice = { type: 'auto', ...noParallel };
  if (call.responseFormat?.type === 'json_schema')
    fields.output_config = { format: { type: 'json_schema', schema: call.responseFormat.schema } };
  return fields;
}

const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'];

/** Reasoning settings as Anthropic's `thinking` and `output_config.effort`, beside any output format. */
export function anthropicReasoningFields(
  call: Pick<ModelCall, 'reasoning'>,
  outputConfig: Anthropic.OutputConfig | null | undefined,
): Partial<Anthropic.MessageCreateParamsNonStreaming> {
  const fields: Partial<Anthropic.MessageCreateParamsNonStreaming> = {};
  const thinking = call.reasoning?.thinking;
  if (thinking !== undefined) fields.thinking = thinkingParam(thinking);
  const effort = call.reasoning?.effort;
  if (effort !== undefined)
    fields.output_config = { ...outputConfig, effort: effort as NonNullable<Anthropic.OutputConfig['effort']> };
  return fields;
}

function settingRefusals(call: Omit<ModelCall, 'maxTokens'>, provider: string): string[] {
  const refused: string[] = [];
  // The Messages API takes no sampling settings: refused rather than dropped (fanout caches a call with `cache: true`).
  if (call.passthrough?.user !== undefined && typeof call.passthrough.user !== 'string')
    refused.push(`user: expected a string, which ${provider} takes as metadata.user_id`);
  if (call.temperature !== undefined) refused.push(`temperature is not supported by ${provider}`);
  if (call.topP !== undefined) refused.push(`top_p is not supported by ${provider}`);
  if (call.seed !== undefined) refused.push(`seed is not supported by ${provider}`);
  const { effort, thinking } = call.reasoning ?? {};
  if (effort !== undefined && !EFFORTS.includes(effort))
    refused.push(`reasoning_effort ${effort} is not supported by ${provider}; give one of ${EFFORTS.join(', ')}`);
  if (typeof thinking === 'object' && thinking.budgetTokens < MIN_THINKING_BUDGET)
    refused.push(`thinking.budget_tokens: ${provider} takes a budget of at least ${MIN_THINKING_BUDGET}`);
  return [...refused, ...unsignedThinkingRefusals(call, provider)];
}

/** What Anthropic cannot take of a call, each naming the field (see `Provider.refuses`). */
export function anthropicRefusals(call: Omit<ModelCall, 'maxTokens'>, provider: string): string[] {
  return nativeFormRefusals(
    call,
    provider,
    (part) => {
      if (part.type === 'file') {
        const type = documentData(part)?.mediaType;
        return type === 'application/pdf' || type === 'text/plain'
          ? undefined
          : `${provider} takes documents of type application/pdf or text/plain`;
      }
      if (!part.url.startsWith('data:')) return undefined;
      const data = DATA_URL.exec(part.url);
      return data && IMAGE_TYPES.has((data[1] as string).toLowerCase())
        ? undefined
        : `${provider} takes base64 images of type jpeg, png, gif or webp`;
    },
    settingRefusals(call, provider),
    TRANSLATED,
  );
}

/** OpenAI fields Anthropic has a field of its own for: `user` is `metadata.user_id`. */
const TRANSLATED: ReadonlySet<string> = new Set(['user']);

/** The passed-through OpenAI fields Anthropic takes in its own form. */
export function anthropicPassthroughFields(
  passthrough: Record<string, unknown> | undefined,
): Partial<Anthropic.MessageCreateParamsNonStreaming> {
  const user = passthrough?.user;
  return typeof user === 'string' ? { metadata: { user_id: user } } : {};
}

/** Anthropic's answer blocks as fanout's text, tool calls and reasoning. */
export function anthropicAnswer(
  content: readonly Anthropic.ContentBlock[],
): Pick<ModelResult, 'text' | 'toolCalls' | 'reasoning'> {
  let text = '';
  let toolCalls: ToolCall[] | undefined;
  let reasoning: ReasoningBlock[] | undefined;
  for (const block of content) {
    if (block.type === 'text') text += block.text;
    else if (block.type === 'tool_use')
      (toolCalls ??= []).push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    else if (block.type === 'thinking')
      (reasoning ??= []).push({ type: 'thinking', text: block.thinking, signature: block.signature });
    else if (block.type === 'redacted_thinking') (reasoning ??= []).push({ type: 'redacted', data: block.data });
  }
  return { text, ...(toolCalls ? { toolCalls } : {}), ...(reasoning ? { reasoning } : {}) };
}
