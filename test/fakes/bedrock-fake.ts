import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { EventStreamCodec, type MessageHeaders } from '@smithy/core/event-streams';
import { listenOnLoopback } from './listen.js';

/**
 * A local stand-in for Bedrock Runtime over HTTP/1.1: `POST /model/<id>/converse`
 * answers JSON, `/converse-stream` answers `application/vnd.amazon.eventstream`
 * frames (with an exception event after the 200 when told), and errors carry
 * `x-amzn-errortype` as Bedrock's do. The model id arrives URL-encoded
 * (`:` as `%3A`).
 */
export type BedrockReply =
  | { kind: 'converse'; text: string; usage?: Usage; toolUse?: ToolUse; reasoning?: Reasoning }
  | {
      kind: 'stream';
      deltas: string[];
      usage?: Usage;
      exceptionAfter?: number;
      toolUse?: ToolUse & { inputPieces: string[] };
      /** A reasoning block before the text, its text in pieces and then its signature. */
      reasoning?: { pieces: string[]; signature: string };
    }
  | { kind: 'error'; status: number; type: string; message: string; headers?: Record<string, string> };

/** A call of a tool after the text, as Converse answers one (streamed: its input in pieces of JSON). */
interface ToolUse {
  toolUseId: string;
  name: string;
  input?: unknown;
}

/** A reasoning block before the text, as Converse answers one for a model that thinks. */
interface Reasoning {
  text: string;
  signature: string;
}

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

export interface BedrockRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface BedrockFake {
  url: string;
  requests: BedrockRequest[];
  script(...replies: BedrockReply[]): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(
  (bytes) => new TextDecoder().decode(bytes),
  (text) => new TextEncoder().encode(text),
);

function frame(type: 'event' | 'exception', name: string, body: unknown): Uint8Array {
  const text = (value: string) => ({ type: 'string' as const, value });
  const headers: MessageHeaders = { ':message-type': text(type), ':content-type': text('application/json') };
  headers[type === 'event' ? ':event-type' : ':exception-type'] = text(name);
  return codec.encode({ headers, body: new TextEncoder().encode(JSON.stringify(body)) });
}

const usageBody = (usage: Usage) => ({
  ...usage,
  totalTokens: usage.inputTokens + usage.outputTokens,
  cacheReadInputTokens: usage.cacheReadInputTokens ?? 0,
  cacheWriteInputTokens: usage.cacheWriteInputTokens ?? 0,
});

export async function startBedrockFake(): Promise<BedrockFake> {
  const requests: BedrockRequest[] = [];
  let replies: BedrockReply[] = [{ kind: 'converse', text: 'Hello from Bedrock' }];
  let served = 0;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      requests.push({
        path: req.url ?? '',
        headers: req.headers,
        body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {},
      });
      const reply = replies[Math.min(served, replies.length - 1)] as BedrockReply;
      served += 1;
      const requestId = `0f1a2b3c-${served}`;
      if (reply.kind === 'error') {
        res
          .writeHead(reply.status, {
            'content-type': 'application/json',
            'x-amzn-requestid': requestId,
            'x-amzn-errortype': `${reply.type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
            ...reply.headers,
          })
          .end(JSON.stringify({ message: reply.message }));
        return;
      }
      const usage = reply.usage ?? { inputTokens: 30, outputTokens: 8 };
      if (reply.kind === 'converse') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId }).end(
          JSON.stringify({
            output: {
              message: {
                role: 'assistant',
                content: [
                  ...(reply.reasoning ? [{ reasoningContent: { reasoningText: reply.reasoning } }] : []),
                  { text: reply.text },
                  ...(reply.toolUse ? [{ toolUse: reply.toolUse }] : []),
                ],
              },
            },
            stopReason: reply.toolUse ? 'tool_use' : 'end_turn',
            usage: usageBody(usage),
            metrics: { latencyMs: 412 },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': requestId });
      res.write(frame('event', 'messageStart', { role: 'assistant' }));
      const reasoning = reply.reasoning;
      if (reasoning) {
        const delta = (reasoningContent: unknown) =>
          frame('event', 'contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent } });
        for (const text of reasoning.pieces) res.write(delta({ text }));
        res.write(delta({ signature: reasoning.signature }));
        res.write(frame('event', 'contentBlockStop', { contentBlockIndex: 0 }));
      }
      const at = reasoning ? 1 : 0;
      for (const [i, text] of reply.deltas.entries()) {
        if (reply.exceptionAfter === i) {
          res.end(
            frame('exception', 'throttlingException', { message: 'Too many tokens, please wait before trying again.' }),
          );
          return;
        }
        res.write(frame('event', 'contentBlockDelta', { contentBlockIndex: at, delta: { text } }));
      }
      res.write(frame('event', 'contentBlockStop', { contentBlockIndex: at }));
      const tool = reply.toolUse;
      if (tool) {
        const start = { toolUse: { toolUseId: tool.toolUseId, name: tool.name } };
        res.write(frame('event', 'contentBlockStart', { contentBlockIndex: at + 1, start }));
        for (const input of tool.inputPieces)
          res.write(frame('event', 'contentBlockDelta', { contentBlockIndex: at + 1, delta: { toolUse: { input } } }));
        res.write(frame('event', 'contentBlockStop', { contentBlockIndex: at + 1 }));
      }
      res.write(frame('event', 'messageStop', { stopReason: tool ? 'tool_use' : 'end_turn' }));
      res.end(frame('event', 'metadata', { usage: usageBody(usage), metrics: { latencyMs: 530 } }));
    });
  });
  const { port, close } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(...next: BedrockReply[]) {
      replies = next;
      served = 0;
    },
    close,
  };
}
