import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './listen.js';

/**
 * A local stand-in for an OpenAI-compatible server, answering
 * `POST /v1/chat/completions` in OpenAI's wire format: JSON completions,
 * server-sent event streams (with an error event after a 200 when told),
 * error bodies with their headers, a connection reset, or no answer at all.
 * Each request takes the next scripted reply; the last one repeats.
 */
export type FakeReply =
  | { kind: 'json'; status?: number; headers?: Record<string, string>; body: unknown }
  | {
      kind: 'stream';
      headers?: Record<string, string>;
      deltas: string[];
      usage?: Usage;
      errorAfter?: number;
      stallAfter?: number;
      /** Tool calls streamed after the text, as OpenAI streams them: id and name first, then the arguments in pieces. */
      toolCalls?: Array<{ id: string; name: string; argumentPieces: string[] }>;
      /** Reasoning text before the answer, as DeepSeek and vLLM stream it (`delta.reasoning_content`). */
      reasoningPieces?: string[];
      /** Each text chunk with its token's log probability (`logprobs`), as OpenAI streams them when asked. */
      logprobs?: boolean;
    }
  | { kind: 'text'; status: number; contentType: string; body: string }
  | { kind: 'reset' }
  | { kind: 'hang' };

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens?: number;
}

export interface RecordedRequest {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Whether the client went away before the answer (an abort, a timeout). */
  closedEarly: boolean;
}

export function completion(
  text: string,
  usage: Usage = { prompt_tokens: 19, completion_tokens: 10 },
  model = 'gpt-4o-mini-2024-07-18',
): unknown {
  return {
    id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
    object: 'chat.completion',
    created: 1741569952,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.prompt_tokens + usage.completion_tokens,
      prompt_tokens_details: { cached_tokens: usage.cached_tokens ?? 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_06737a9306',
  };
}

/** A completion whose answer is calls of tools, as OpenAI writes one. */
export function toolCallCompletion(calls: Array<{ id: string; name: string; arguments: string }>): unknown {
  const body = completion('') as { choices: Array<Record<string, unknown>> };
  body.choices[0] = {
    index: 0,
    message: {
      role: 'assistant',
      content: null,
      refusal: null,
      annotations: [],
      tool_calls: calls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
      })),
    },
    logprobs: null,
    finish_reason: 'tool_calls',
  };
  return body;
}

export function openAiError(
  status: number,
  message: string,
  type: string,
  code: string | null,
  headers: Record<string, string> = {},
): FakeReply {
  return { kind: 'json', status, headers, body: { error: { message, type, param: null, code } } };
}

export interface OpenAiFake {
  url: string;
  requests: RecordedRequest[];
  script(...replies: FakeReply[]): void;
  /** Decides each reply from the request instead of a script. */
  respondWith(choose: ((request: RecordedRequest) => FakeReply) | undefined): void;
  close(): Promise<void>;
}

/** A token's log probability as OpenAI writes one, made up from its text and place. */
export function tokenLogprob(token: string, i: number) {
  return { token, logprob: -0.25 * (i + 1), bytes: [...Buffer.from(token)], top_logprobs: [] };
}

function chunk(
  delta: Record<string, unknown>,
  finish: string | null,
  usage: unknown = null,
  logprobs: unknown = null,
): string {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-stream-1',
    object: 'chat.completion.chunk',
    created: 1741569952,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_06737a9306',
    choices: finish === 'none' ? [] : [{ index: 0, delta, logprobs, finish_reason: finish }],
    usage,
  })}\n\n`;
}

function stream(res: ServerResponse, reply: Extract<FakeReply, { kind: 'stream' }>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_stream_1', ...reply.headers });
  res.write(chunk({ role: 'assistant', content: '', refusal: null }, null));
  for (const piece of reply.reasoningPieces ?? []) res.write(chunk({ reasoning_content: piece }, null));
  for (const [i, delta] of reply.deltas.entries()) {
    if (reply.stallAfter === i) return;
    if (reply.errorAfter === i) {
      res.end(
        `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } })}\n\n`,
      );
      return;
    }
    res.write(
      chunk(
        { content: delta },
        null,
        null,
        reply.logprobs ? { content: [tokenLogprob(delta, i)], refusal: null } : null,
      ),
    );
  }
  for (const [index, call] of (reply.toolCalls ?? []).entries()) {
    res.write(
      chunk(
        { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] },
        null,
      ),
    );
    for (const piece of call.argumentPieces)
      res.write(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }, null));
  }
  res.write(chunk({}, reply.toolCalls?.length ? 'tool_calls' : 'stop'));
  const usage = reply.usage ?? { prompt_tokens: 12, completion_tokens: reply.deltas.length };
  res.write(
    chunk({}, 'none', {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.prompt_tokens + usage.completion_tokens,
      prompt_tokens_details: { cached_tokens: usage.cached_tokens ?? 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    }),
  );
  res.end('data: [DONE]\n\n');
}

export async function startOpenAiFake(): Promise<OpenAiFake> {
  const requests: RecordedRequest[] = [];
  let replies: FakeReply[] = [{ kind: 'json', body: completion('Hello!') }];
  let served = 0;
  let chooser: ((request: RecordedRequest) => FakeReply) | undefined;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const record: RecordedRequest = {
        headers: req.headers,
        body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {},
        closedEarly: false,
      };
      requests.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.closedEarly = true;
      });
      const reply = chooser ? chooser(record) : (replies[Math.min(served, replies.length - 1)] as FakeReply);
      served += 1;
      if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      if (reply.kind === 'reset') req.socket.destroy();
      else if (reply.kind === 'hang') return;
      else if (reply.kind === 'stream') stream(res, reply);
      else if (reply.kind === 'text')
        res.writeHead(reply.status, { 'content-type': reply.contentType }).end(reply.body);
      else
        res
          .writeHead(reply.status ?? 200, {
            'content-type': 'application/json',
            'x-request-id': `req_${served}`,
            ...reply.headers,
          })
          .end(JSON.stringify(reply.body));
    });
  });
  const { port, close } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    script(...next: FakeReply[]) {
      replies = next;
      served = 0;
      chooser = undefined;
    },
    respondWith(choose) {
      chooser = choose;
    },
    close,
  };
}
