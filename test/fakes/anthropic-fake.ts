import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { listenOnLoopback } from './listen.js';

/**
 * A local stand-in for Anthropic's Messages API (`POST /v1/messages`) in its
 * wire format: messages, server-sent event streams (with an `error` event
 * after a 200 when told), and error bodies with their headers. Accepts both
 * `Authorization: Bearer` (SDK 1.x) and `x-api-key`. Each request takes the
 * next scripted reply; the last one repeats.
 */
export type AnthropicReply =
  | { kind: 'json'; status?: number; headers?: Record<string, string>; body: unknown }
  | {
      kind: 'stream';
      deltas: string[];
      usage?: {
        input_tokens: number;
        output_tokens: number;
        cache_read_input_tokens?: number;
        cache_creation_input_tokens?: number;
      };
      errorAfter?: number;
      stallAfter?: number;
      /** A tool_use block after the text, its input streamed in pieces of JSON as Anthropic does. */
      toolUse?: { id: string; name: string; inputPieces: string[] };
      /** A thinking block before the text: its text in pieces, then its signature, as Anthropic streams them. */
      thinking?: { pieces: string[]; signature: string };
    }
  | { kind: 'hang' };

export interface AnthropicRequest {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export function message(
  text: string,
  usage = { input_tokens: 25, output_tokens: 12, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
  model = 'claude-sonnet-4-5-20250929',
): unknown {
  return {
    id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { ...usage, service_tier: 'standard' },
  };
}

/** A message whose answer is a call of a tool, as Anthropic writes one. */
export function toolUseMessage(text: string, tool: { id: string; name: string; input: unknown }): unknown {
  const body = message(text) as { content: unknown[]; stop_reason: string };
  body.content = [...(text ? [{ type: 'text', text }] : []), { type: 'tool_use', ...tool }];
  body.stop_reason = 'tool_use';
  return body;
}

/** A message that thought before it answered: a thinking block with its signature, then the text. */
export function thinkingMessage(thinking: string, signature: string, text: string): unknown {
  const body = message(text) as { content: unknown[] };
  body.content = [{ type: 'thinking', thinking, signature }, ...body.content];
  return body;
}

export function anthropicError(
  status: number,
  type: string,
  text: string,
  headers: Record<string, string> = {},
  details?: unknown,
): AnthropicReply {
  return {
    kind: 'json',
    status,
    headers,
    body: {
      type: 'error',
      error: { type, message: text, ...(details ? { details } : {}) },
      request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy',
    },
  };
}

export interface AnthropicFake {
  url: string;
  requests: AnthropicRequest[];
  script(...replies: AnthropicReply[]): void;
  close(): Promise<void>;
}

const sse = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

export async function startAnthropicFake(): Promise<AnthropicFake> {
  const requests: AnthropicRequest[] = [];
  let replies: AnthropicReply[] = [{ kind: 'json', body: message('Hello!') }];
  let served = 0;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
      const reply = replies[Math.min(served, replies.length - 1)] as AnthropicReply;
      served += 1;
      if (!req.headers.authorization?.startsWith('Bearer ') && !req.headers['x-api-key']) {
        res
          .writeHead(401, { 'content-type': 'application/json' })
          .end(
            JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }),
          );
        return;
      }
      if (reply.kind === 'hang') return;
      if (reply.kind === 'json') {
        res
          .writeHead(reply.status ?? 200, {
            'content-type': 'application/json',
            'request-id': `req_${served}`,
            ...reply.headers,
          })
          .end(JSON.stringify(reply.body));
        return;
      }
      const usage = reply.usage ?? { input_tokens: 25, output_tokens: reply.deltas.length };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_stream' });
      res.write(
        sse('message_start', {
          type: 'message_start',
          message: {
            id: 'msg_stream',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4-5-20250929',
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { ...usage, output_tokens: 1 },
          },
        }),
      );
      const thinking = reply.thinking;
      if (thinking) {
        const block = { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } };
        res.write(sse('content_block_start', { ...block, content_block: { ...block.content_block, signature: '' } }));
        for (const piece of thinking.pieces)
          res.write(
            sse('content_block_delta', {
              type: 'content_block_delta',
              index: 0,
              delta: { type: 'thinking_delta', thinking: piece },
            }),
          );
        res.write(
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'signature_delta', signature: thinking.signature },
          }),
        );
        res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
      }
      const at = thinking ? 1 : 0;
      res.write(
        sse('content_block_start', {
          type: 'content_block_start',
          index: at,
          content_block: { type: 'text', text: '' },
        }),
      );
      res.write(sse('ping', { type: 'ping' }));
      for (const [i, delta] of reply.deltas.entries()) {
        if (reply.stallAfter === i) return;
        if (reply.errorAfter === i) {
          res.end(sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }));
          return;
        }
        res.write(
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: at,
            delta: { type: 'text_delta', text: delta },
          }),
        );
      }
      res.write(sse('content_block_stop', { type: 'content_block_stop', index: at }));
      if (reply.toolUse) {
        const { id, name, inputPieces } = reply.toolUse;
        res.write(
          sse('content_block_start', {
            type: 'content_block_start',
            index: at + 1,
            content_block: { type: 'tool_use', id, name, input: {} },
          }),
        );
        for (const piece of inputPieces)
          res.write(
            sse('content_block_delta', {
              type: 'content_block_delta',
              index: at + 1,
              delta: { type: 'input_json_delta', partial_json: piece },
            }),
          );
        res.write(sse('content_block_stop', { type: 'content_block_stop', index: at + 1 }));
      }
      res.write(
        sse('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: reply.toolUse ? 'tool_use' : 'end_turn', stop_sequence: null },
          usage: { output_tokens: usage.output_tokens },
        }),
      );
      res.end(sse('message_stop', { type: 'message_stop' }));
    });
  });
  const { port, close } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(...next: AnthropicReply[]) {
      replies = next;
      served = 0;
    },
    close,
  };
}
