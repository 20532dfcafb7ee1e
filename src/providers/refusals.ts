import type { ModelCall } from '../contracts/provider.js';
import type { ContentPart } from '../contracts/types.js';

/** What a provider carries of a request beyond plain text messages. */
export interface Carries {
  tools?: boolean;
  images?: boolean;
  /** Documents (`file` parts). */
  files?: boolean;
  responseFormat?: boolean;
  /** Reasoning settings and the reasoning blocks of earlier answers. */
  reasoning?: boolean;
  /** Speakers' names on messages. */
  names?: boolean;
  /** Passed-through OpenAI fields the provider translates to its own (Anthropic: `user`). */
  passthrough?: ReadonlySet<string>;
}

/**
 * The fields of `call` that `provider` does not carry, one message each,
 * naming the field and the provider: tools, image parts and a response
 * format unless it carries them, and every OpenAI `passthrough` field (only
 * an OpenAI-compatible provider takes those as they are).
 */
export function fieldsNotCarried(
  call: Omit<ModelCall, 'maxTokens'>,
  provider: string,
  carries: Carries = {},
): string[] {
  let refused: string[] | undefined;
  const not = (message: string) => (refused ??= []).push(message);
  const notHere = (field: string) => not(`${field} is not supported by ${provider} in this version of fanout`);
  let toolTurns = false;
  let images = false;
  let files = false;
  let reasoningBlocks = false;
  call.messages.forEach((m, i) => {
    if (m.role === 'tool' || m.toolCalls?.length) toolTurns = true;
    if (typeof m.content !== 'string' && m.content.some((p) => p.type === 'image')) images = true;
    if (typeof m.content !== 'string' && m.content.some((p) => p.type === 'file')) files = true;
    if (m.reasoning?.length) reasoningBlocks = true;
    if (m.name !== undefined && !carries.names) not(`messages.${i}.name is not supported by ${provider}`);
  });
  if (!carries.tools) {
    if (call.tools?.length) notHere('tools');
    if (call.toolChoice !== undefined) notHere('tool_choice');
    if (call.parallelToolCalls !== undefined) notHere('parallel_tool_calls');
    if (toolTurns) notHere('tool calls and tool results');
  }
  if (!carries.images && images) notHere('image content');
  if (!carries.files && files) notHere('file content');
  if (!carries.responseFormat && call.responseFormat && call.responseFormat.type !== 'text') notHere('response_format');
  if (!carries.reasoning) {
    if (call.reasoning?.effort !== undefined) notHere('reasoning_effort');
    if (call.reasoning?.thinking !== undefined) notHere('thinking');
    if (reasoningBlocks) notHere('thinking_blocks');
  }
  if (call.passthrough)
    for (const key of Object.keys(call.passthrough))
      if (!carries.passthrough?.has(key)) not(`${key} is not supported by ${provider}`);
  return refused ?? NONE;
}

const NONE: string[] = [];

/**
 * What a provider that carries tools, images and JSON Schema output in its
 * own form still refuses (its reasoning settings it checks itself, in
 * `more`): a JSON object format without a schema, a tool
 * call whose arguments are not a JSON object (its input must be one), and an
 * image or document `partRefusal` names a reason for (a type or source it
 * cannot take); a document named by an OpenAI file id, which only OpenAI can
 * read.
 */
export function nativeFormRefusals(
  call: Omit<ModelCall, 'maxTokens'>,
  provider: string,
  partRefusal: (part: Exclude<ContentPart, { type: 'text' }>) => string | undefined,
  more: string[] = [],
  passthrough?: ReadonlySet<string>,
): string[] {
  const refused = fieldsNotCarried(call, provider, {
    passthrough,
    tools: true,
    images: true,
    files: true,
    responseFormat: true,
    reasoning: true,
  });
  if (call.responseFormat?.type === 'json_object')
    more.push(`response_format json_object is not supported by ${provider}; give a json_schema`);
  call.messages.forEach((message, i) => {
    message.toolCalls?.forEach((toolCall, j) => {
      if (!isJsonObject(toolCall.arguments))
        more.push(
          `messages.${i}.toolCalls.${j}.arguments: not a JSON object, and ${provider} takes a tool call's input as one`,
        );
    });
    if (typeof message.content === 'string') return;
    message.content.forEach((part, j) => {
      const why =
        part.type === 'file' && part.fileId !== undefined
          ? `file_id names a file uploaded to OpenAI, which ${provider} cannot read; send the document as file_data`
          : part.type === 'text'
            ? undefined
            : partRefusal(part);
      if (why) more.push(`messages.${i}.content.${j}: ${why}`);
    });
  });
  return more.length > 0 ? [...refused, ...more] : refused;
}

const DOCUMENT_URL = /^data:([\w.+-]+\/[\w.+-]+);base64,([A-Za-z0-9+/=\s]+)$/i;

/** A document sent as a base64 data: URL: its media type, in lower case, and its data without white space. */
export function documentData(
  part: Extract<ContentPart, { type: 'file' }>,
): { mediaType: string; base64: string } | undefined {
  const match = DOCUMENT_URL.exec(part.url ?? '');
  if (!match) return undefined;
  return { mediaType: (match[1] as string).toLowerCase(), base64: (match[2] as string).replace(/\s/g, '') };
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
