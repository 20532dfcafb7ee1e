import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryLimiter, SystemClock, type LimitSpec } from '../dist/index.js';

/**
 * An HTTP upstream in Anthropic's Messages dialect (`POST /v1/messages`)
 * that keeps its limits as Anthropic does: requests, input tokens (charged
 * on arrival) and output tokens (charged at max_tokens, refunded to what was
 * written), each a bucket. Its answers carry `anthropic-ratelimit-*` headers
 * for each, and `tokens-*`, the tightest token limit in force, as Anthropic
 * sends it; a call over a limit gets 429 with `retry-after`. For the
 * W-anthropic benchmark.
 */
export interface AnthropicUpstream {
  url: string;
  completed(): number;
  refused(): number;
  close(): Promise<void>;
}

const KINDS = {
  requestsPerMinute: 'requests',
  inputTokensPerMinute: 'input-tokens',
  outputTokensPerMinute: 'output-tokens',
};

export async function startAnthropicUpstream(
  limits: LimitSpec,
  call: { inputTokens: number; outputTokens: number; latencyMs: number },
): Promise<AnthropicUpstream> {
  const clock = new SystemClock();
  const limiter = new MemoryLimiter();
  limiter.define('m', { ...limits, transitMs: 0 }, clock.now());
  let completed = 0;
  let refused = 0;
  const headers = (now: number): Record<string, string> => {
    const out: Record<string, string> = {};
    let tightest: { limit: number; remaining: number; resetMs: number } | undefined;
    for (const level of limiter.levels('m', now)) {
      const kind = KINDS[level.name as keyof typeof KINDS];
      if (!kind) continue;
      out[`anthropic-ratelimit-${kind}-limit`] = String(level.limit);
      out[`anthropic-ratelimit-${kind}-remaining`] = String(Math.floor(level.remaining));
      out[`anthropic-ratelimit-${kind}-reset`] = new Date(now + level.resetMs).toISOString();
      if (kind !== 'requests' && (!tightest || level.limit < tightest.limit)) tightest = level;
    }
    if (tightest) {
      out['anthropic-ratelimit-tokens-limit'] = String(tightest.limit);
      out['anthropic-ratelimit-tokens-remaining'] = String(Math.floor(tightest.remaining));
      out['anthropic-ratelimit-tokens-reset'] = new Date(now + tightest.resetMs).toISOString();
    }
    return out;
  };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as { max_tokens: number };
      const cost = { requests: 1, tokens: 0, inputTokens: call.inputTokens, outputTokens: body.max_tokens };
      const permit = limiter.reserve('m', cost, clock.now());
      if (!permit.granted) {
        refused += 1;
        res
          .writeHead(429, {
            'content-type': 'application/json',
            'retry-after': String(Math.max(1, Math.ceil(permit.waitMs / 1000))),
            ...headers(clock.now()),
          })
          .end(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Rate limited' } }));
        return;
      }
      setTimeout(() => {
        const now = clock.now();
        limiter.settle(permit, now, { ...cost, outputTokens: call.outputTokens });
        completed += 1;
        res
          .writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${completed}`, ...headers(now) })
          .end(
            JSON.stringify({
              id: `msg_${completed}`,
              type: 'message',
              role: 'assistant',
              model: 'm',
              content: [{ type: 'text', text: 'ok' }],
              stop_reason: 'end_turn',
              stop_sequence: null,
              usage: { input_tokens: call.inputTokens, output_tokens: call.outputTokens },
            }),
          );
      }, call.latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    completed: () => completed,
    refused: () => refused,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
