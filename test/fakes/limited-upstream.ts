import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MockProvider,
  ProviderError,
  SystemClock,
  type LatencyProfile,
  type LimitSpec,
  type RateLimitInfo,
} from '../../src/index.js';

/**
 * An OpenAI-compatible HTTP upstream that enforces limits it does not
 * announce: the mock model's own token buckets decide, and only the answers'
 * `x-ratelimit-*` headers and the 429s (with `retry-after-ms`) tell a client
 * what they are. For the W-learned benchmark and the shared-limits tests.
 */
export interface LimitedUpstream {
  url: string;
  completed(): number;
  refused(): number;
  requests(): number;
  close(): Promise<void>;
}

const duration = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : `${(ms / 1000).toFixed(3)}s`;

function headersOf(info: RateLimitInfo | undefined): Record<string, string> {
  const headers: Record<string, string | undefined> = {
    'x-ratelimit-limit-requests': info?.requestsLimit?.toString(),
    'x-ratelimit-remaining-requests': info?.requestsRemaining?.toString(),
    'x-ratelimit-reset-requests': duration(info?.requestsResetMs),
    'x-ratelimit-limit-tokens': info?.tokensLimit?.toString(),
    'x-ratelimit-remaining-tokens': info?.tokensRemaining?.toString(),
    'x-ratelimit-reset-tokens': duration(info?.tokensResetMs),
  };
  return Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

export async function startLimitedUpstream(limits: LimitSpec, latency: LatencyProfile): Promise<LimitedUpstream> {
  const mock = new MockProvider({ seed: 3, models: { m: { latency, limits, outputTokens: { min: 20, max: 60 } } } });
  const clock = new SystemClock();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as {
        messages: Array<{ role: 'user' | 'assistant' | 'system'; content: string }>;
        max_tokens?: number;
      };
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      mock
        .complete(
          {
            model: 'm',
            messages: body.messages.filter((m) => m.role !== 'system') as Array<{
              role: 'user' | 'assistant';
              content: string;
            }>,
            maxTokens: body.max_tokens ?? 1024,
          },
          { clock, attempt: 1, signal: controller.signal },
        )
        .then(
          (result) => {
            res.writeHead(200, { 'content-type': 'application/json', ...headersOf(result.rateLimit) }).end(
              JSON.stringify({
                id: 'chatcmpl-upstream',
                object: 'chat.completion',
                created: 1741569952,
                model: 'm',
                choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: 'stop' }],
                usage: {
                  prompt_tokens: result.usage.inputTokens,
                  completion_tokens: result.usage.outputTokens,
                  total_tokens: result.usage.inputTokens + result.usage.outputTokens,
                },
              }),
            );
          },
          (error: unknown) => {
            if (controller.signal.aborted) return;
            const limited = error instanceof ProviderError && error.status === 429;
            res
              .writeHead(limited ? 429 : 500, {
                'content-type': 'application/json',
                ...(limited
                  ? { 'retry-after-ms': String(error.retryAfterMs ?? 1000), ...headersOf(error.rateLimit) }
                  : {}),
              })
              .end(
                JSON.stringify({
                  error: {
                    message: (error as Error).message,
                    type: limited ? 'requests' : 'server_error',
                    param: null,
                    code: limited ? 'rate_limit_exceeded' : null,
                  },
                }),
              );
          },
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    completed: () => mock.stats('m').completed,
    refused: () => mock.stats('m').rateLimited,
    requests: () => mock.stats('m').calls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
