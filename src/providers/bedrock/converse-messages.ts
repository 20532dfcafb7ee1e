import type {
  ContentBlock,
  ConverseCommandInput,
  ImageFormat,
  Message,
  ToolConfiguration,
} from '@aws-sdk/client-bedrock-runtime';
import type { ModelCall } from '../../contracts/provider.js';
import { textOf, type ChatMessage, type ContentPart, type ToolCall } from '../../contracts/types.js';
import { nativeFormRefusals } from '../refusals.js';

/**
 * fanout's request in Bedrock Converse's form, and Converse's answer back:
 * text and images (bytes, from a base64 `data:` URL: Converse takes no image
 * URL and fanout never fetches one) as content blocks, assistant tool calls
 * as `toolUse` blocks, tool results as `toolResult` blocks in one user turn,
 * tools and tool choice as `toolConfig`, and a JSON Schema response format as
 * `outputConfig.textFormat`, Bedrock's own structured output.
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

function contentBlocks(content: ChatMessage['content']): ContentBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  return content.map((part): ContentBlock => (part.type === 'text' ? { text: part.text } : imageBlock(part)));
}

function toolUse(call: ToolCall): ContentBlock {
  return { toolUse: { toolUseId: call.id, name: call.name, input: JSON.parse(call.arguments) as never } };
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
      blocks = contentBlocks(message.content);
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

/** What Converse cannot take of a call, each naming the field (see `Provider.refuses`). */
export function converseRefusals(call: Omit<ModelCall, 'maxTokens'>, provider: string): string[] {
  const more: string[] = [];
  if (call.toolChoice === 'none') more.push(`tool_choice none is not supported by ${provider}; send no tools`);
  if (call.parallelToolCalls !== undefined) more.push(`parallel_tool_calls is not supported by ${provider}`);
  const toolTurns = call.messages.some((m) => m.role === 'tool' || m.toolCalls?.length);
  if (toolTurns && !call.tools?.length)
    more.push(`tools: ${provider} needs the tools of a conversation that called them`);
  return nativeFormRefusals(
    call,
    provider,
    (url) =>
      DATA_URL.test(url) ? undefined : `${provider} takes images as base64 data: URLs of type png, jpeg, gif or webp`,
    more,
  );
}

/** Converse's answer blocks as fanout's text and tool calls. */
export function converseAnswer(blocks: readonly ContentBlock[]): { text: string; toolCalls?: ToolCall[] } {
  let text = '';
  let toolCalls: ToolCall[] | undefined;
  for (const block of blocks) {
    if (block.text !== undefined) text += block.text;
    else if (block.toolUse)
      (toolCalls ??= []).push({
        id: block.toolUse.toolUseId ?? '',
        name: block.toolUse.name ?? '',
        arguments: JSON.stringify(block.toolUse.input ?? {}),
      });
  }
  return toolCalls ? { text, toolCalls } : { text };
}
