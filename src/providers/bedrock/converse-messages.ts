import type {
  ContentBlock,
  DocumentFormat,
  ConverseCommandInput,
  ImageFormat,
  Message,
  ToolConfiguration,
} from '@aws-sdk/client-bedrock-runtime';
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
 * fanout's request in Bedrock Converse's form, and Converse's answer back:
 * text and images (bytes, from a base64 `data:` URL: Converse takes no image
 * URL and fanout never fetches one) as content blocks, assistant tool calls
 * as `toolUse` blocks, tool results as `toolResult` blocks in one user turn,
 * tools and tool choice as `toolConfig`, and a JSON Schema response format as
 * `outputConfig.textFormat`, Bedrock's own structured output; reasoning
 * blocks as `reasoningContent` and reasoning settings in the model's own
 * fields (Claude's `thinking`, Amazon Nova's `reasoningConfig`).
 */

const DATA_URL = /^data:image\/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/=\s]+)$/i;

function imageBlock(part: Extract<ContentPart, { type: 'image' }>): ContentBlock {
  const [, format, data] = DATA_URL.exec(part.url) as RegExpExecArray;
  return {
    image: {
      format: (format as string).toLowerCase() as ImageFormat,
      source: { bytes: Buffer.from((data as string).replace(/\s/g, ''), 'base64') },
    },
  };
}

/** Document formats Converse takes, by media type. */
const DOCUMENT_FORMATS: Readonly<Record<string, DocumentFormat>> = {
  'application/pdf': 'pdf',
  'text/plain': 'txt',
  'text/markdown': 'md',
  'text/html': 'html',
  'text/csv': 'csv',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
};

/**
 * A document block: its format from the media type, its bytes, and a name
 * Converse accepts (letters, digits, single spaces, hyphens, parentheses and
 * square brackets), made from the file name without its extension, else
 * `document-<place in the message>`.
 */
function documentBlock(part: Extract<ContentPart, { type: 'file' }>, at: number): ContentBlock {
  const { mediaType, base64 } = documentData(part) as NonNullable<ReturnType<typeof documentData>>;
  const stem = (part.filename ?? '').replace(/\.[^.]*$/, '');
  const name =
    stem
      .replace(/[^A-Za-z0-9\s()[\]-]/g, '-')
      .replace(/\s+/g, ' ')
      .trim() || `document-${at}`;
  return {
    document: {
      format: DOCUMENT_FORMATS[mediaType] as DocumentFormat,
      name,
      source: { bytes: Buffer.from(base64, 'base64') },
    },
  };
}

function contentBlocks(content: ChatMessage['content']): ContentBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  return content.map((part, at): ContentBlock =>
    part.type === 'text' ? { text: part.text } : part.type === 'image' ? imageBlock(part) : documentBlock(part, at),
  );
}

function toolUse(call: ToolCall): ContentBlock {
  return { toolUse: { toolUseId: call.id, name: call.name, input: JSON.parse(call.arguments) as never } };
}

/** An earlier answer's reasoning, first in its turn and unchanged, as Claude requires of a tool conversation. */
function reasoningBlocks(reasoning: ChatMessage['reasoning']): ContentBlock[] {
  if (!reasoning) return [];
  return reasoning.map((b): ContentBlock => ({
    reasoningContent:
      b.type === 'redacted'
        ? { redactedContent: Buffer.from(b.data, 'base64') }
        : { reasoningText: { text: b.text, ...(b.signature !== undefined ? { signature: b.signature } : {}) } },
  }));
}

/** The conversation as Converse turns: tool results join one user turn; a message marked `cache` ends with a cache point. */
export function converseMessages(messages: readonly ChatMessage[]): Message[] {
  const turns: Message[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    let blocks: ContentBlock[];
    if (message.role === 'tool') {
      blocks = [{ toolResult: { toolUseId: message.toolCallId, content: [{ text: textOf(message.content) }] } }];
    } else {
      blocks = [...reasoningBlocks(message.reasoning), ...contentBlocks(message.content)];
      if (message.toolCalls) for (const call of message.toolCalls) blocks.push(toolUse(call));
    }
    if (message.cache) blocks.push({ cachePoint: { type: 'default' } });
    const previous = turns[turns.length - 1];
    if (message.role === 'tool' && previous?.role === 'user') previous.content?.push(...blocks);
    else turns.push({ role: message.role === 'assistant' ? 'assistant' : 'user', content: blocks });
  }
  return turns;
}

/** Tools, tool choice and the response format, as Converse's request fields. */
export function converseToolFields(
  call: Pick<ModelCall, 'tools' | 'toolChoice' | 'responseFormat'>,
): Pick<ConverseCommandInput, 'toolConfig' | 'outputConfig'> {
  const fields: Pick<ConverseCommandInput, 'toolConfig' | 'outputConfig'> = {};
  if (call.tools?.length) {
    const config: ToolConfiguration = {
      tools: call.tools.map((tool) => ({
        toolSpec: {
          name: tool.name,
          inputSchema: { json: (tool.parameters ?? { type: 'object', properties: {} }) as never },
          ...(tool.description !== undefined ? { description: tool.description } : {}),
          ...(tool.strict !== undefined ? { strict: tool.strict } : {}),
        },
      })),
    };
    const choice = call.toolChoice;
    if (choice === 'auto') config.toolChoice = { auto: {} };
    else if (choice === 'required') config.toolChoice = { any: {} };
    else if (typeof choice === 'object') config.toolChoice = { tool: { name: choice.name } };
    fields.toolConfig = config;
  }
  const format = call.responseFormat;
  if (format?.type === 'json_schema') {
    const jsonSchema = {
      schema: JSON.stringify(format.schema),
      name: format.name,
      ...(format.description !== undefined ? { description: format.description } : {}),
    };
    fields.outputConfig = { textFormat: { type: 'json_schema', structure: { jsonSchema } } };
  }
  return fields;
}

const claude = (model: string) => /anthropic\.claude/.test(model);
const nova = (model: string) => /amazon\.nova/.test(model);
const NOVA_EFFORTS = ['low', 'medium', 'high'];

/**
 * Reasoning settings as the model's own request fields, which Converse
 * passes on (`additionalModelRequestFields`): Claude's `thinking`, Amazon
 * Nova's `reasoningConfig`. Other models are refused them (`converseRefusals`).
 */
export function converseReasoningFields(call: Pick<ModelCall, 'model' | 'reasoning'>): Record<string, unknown> {
  const { effort, thinking } = call.reasoning ?? {};
  const fields: Record<string, unknown> = {};
  if (thinking !== undefined && claude(call.model)) fields.thinking = thinkingParam(thinking);
  if (effort !== undefined && nova(call.model))
    fields.reasoningConfig = { type: 'enabled', maxReasoningEffort: effort };
  return fields;
}

function reasoningRefusals(call: Omit<ModelCall, 'maxTokens'>, provider: string): string[] {
  const refused: string[] = [];
  const { effort, thinking } = call.reasoning ?? {};
  const forModel = `by ${provider} for ${call.model}`;
  if (thinking !== undefined && !claude(call.model))
    refused.push(`thinking is not supported ${forModel}; Claude models take it`);
  if (typeof thinking === 'object' && thinking.budgetTokens < MIN_THINKING_BUDGET)
    refused.push(`thinking.budget_tokens: ${provider} takes a budget of at least ${MIN_THINKING_BUDGET}`);
  if (effort !== undefined && !(nova(call.model) && NOVA_EFFORTS.includes(effort)))
    refused.push(
      nova(call.model)
        ? `reasoning_effort ${effort} is not supported ${forModel}; give one of ${NOVA_EFFORTS.join(', ')}`
        : `reasoning_effort is not supported ${forModel}; Amazon Nova models take it (Claude takes thinking)`,
    );
  return claude(call.model) ? [...refused, ...unsignedThinkingRefusals(call, provider)] : refused;
}

function documentRefusal(part: Extract<ContentPart, { type: 'file' }>, provider: string): string | undefined {
  const type = documentData(part)?.mediaType;
  return type !== undefined && type in DOCUMENT_FORMATS
    ? undefined
    : `${provider} takes documents of type ${Object.keys(DOCUMENT_FORMATS).join(', ')}`;
}

/** What Converse cannot take of a call, each naming the field (see `Provider.refuses`). */
export function converseRefusals(call: Omit<ModelCall, 'maxTokens'>, provider: string): string[] {
  const more: string[] = reasoningRefusals(call, provider);
  if (call.seed !== undefined) more.push(`seed is not supported by ${provider}`);
  if (call.toolChoice === 'none') more.push(`tool_choice none is not supported by ${provider}; send no tools`);
  if (call.parallelToolCalls !== undefined) more.push(`parallel_tool_calls is not supported by ${provider}`);
  const toolTurns = call.messages.some((m) => m.role === 'tool' || m.toolCalls?.length);
  if (toolTurns && !call.tools?.length)
    more.push(`tools: ${provider} needs the tools of a conversation that called them`);
  return nativeFormRefusals(
    call,
    provider,
    (part) =>
      part.type === 'file'
        ? documentRefusal(part, provider)
        : DATA_URL.test(part.url)
          ? undefined
          : `${provider} takes images as base64 data: URLs of type png, jpeg, gif or webp`,
    more,
  );
}

/** Converse's answer blocks as fanout's text, tool calls and reasoning. */
export function converseAnswer(blocks: readonly ContentBlock[]): Pick<ModelResult, 'text' | 'toolCalls' | 'reasoning'> {
  let text = '';
  let toolCalls: ToolCall[] | undefined;
  let reasoning: ReasoningBlock[] | undefined;
  for (const block of blocks) {
    if (block.text !== undefined) text += block.text;
    else if (block.toolUse)
      (toolCalls ??= []).push({
        id: block.toolUse.toolUseId ?? '',
        name: block.toolUse.name ?? '',
        arguments: JSON.stringify(block.toolUse.input ?? {}),
      });
    else if (block.reasoningContent?.reasoningText) {
      const { text: thought, signature } = block.reasoningContent.reasoningText;
      (reasoning ??= []).push({ type: 'thinking', text: thought ?? '', ...(signature ? { signature } : {}) });
    } else if (block.reasoningContent?.redactedContent)
      (reasoning ??= []).push({
        type: 'redacted',
        data: Buffer.from(block.reasoningContent.redactedContent).toString('base64'),
      });
  }
  return { text, ...(toolCalls ? { toolCalls } : {}), ...(reasoning ? { reasoning } : {}) };
}
