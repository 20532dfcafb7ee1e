import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { Dispatcher } from 'undici';
import type { HeaderSource } from '../rate-limit-headers.js';
import { openAiSdk, undiciModule } from '../sdk.js';

/**
 * A non-streamed chat completion over undici, without the SDK's request
 * machinery (its fetch, web streams and per-call header building cost several
 * hundred microseconds of CPU a call, which caps a gateway at a few thousand
 * calls a second on one core). The request body is the same JSON the SDK
 * sends; failures are the SDK's own error classes, so one classifier serves
 * both paths.
 */
export class ChatHttp {
  private readonly origin: string;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly agent: Dispatcher;
  private readonly timeoutMs: number;

  constructor(options: {
    baseURL: string;
    apiKey: string;
    timeoutMs: number;
    defaultHeaders?: Record<string, string>;
  }) {
    const url = new URL(options.baseURL);
    this.origin = url.origin;
    this.path = `${url.pathname.replace(/\/$/, '')}/chat/completions`;
    this.headers = {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Bearer ${options.apiKey}`,
      ...options.defaultHeaders,
    };
    this.timeoutMs = options.timeoutMs;
    this.agent = new (undiciModule().Agent)({
      keepAliveTimeout: 30_000,
      connect: { timeout: Math.min(options.timeoutMs, 30_000) },
    });
  }

  async create(
    params: ChatCompletionCreateParamsNonStreaming,
    signal: AbortSignal,
  ): Promise<{ data: ChatCompletion; headers: HeaderSource }> {
    const body = JSON.stringify(params);
    let url = { origin: this.origin, path: this.path };
    let headers = this.headers;
    let answer: Dispatcher.ResponseData;
    let text: string;
    try {
      // Redirects are followed, as the SDK's fetch follows them: the same request goes to the new
      // place, without the key if that is another origin (as fetch does).
      for (let hops = 0; ; hops++) {
        answer = await this.agent.request({
          ...url,
          method: 'POST',
          headers,
          body,
          signal,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
        const location = single(answer.headers.location);
        if (!REDIRECTS.has(answer.statusCode) || !location || hops === MAX_REDIRECTS) break;
        await answer.body.dump();
        const next = new URL(location, `${url.origin}${url.path}`);
        if (next.origin !== url.origin)
          headers = Object.fromEntries(
            Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'),
          );
        url = { origin: next.origin, path: `${next.pathname}${next.search}` };
      }
      text = await answer.body.text();
    } catch (error) {
      const sdk = openAiSdk();
      if (signal.aborted) throw new sdk.APIUserAbortError();
      const { HeadersTimeoutError, BodyTimeoutError, ConnectTimeoutError } = undiciModule().errors;
      if (
        error instanceof HeadersTimeoutError ||
        error instanceof BodyTimeoutError ||
        error instanceof ConnectTimeoutError
      ) {
        throw new sdk.APIConnectionTimeoutError();
      }
      throw new sdk.APIConnectionError({ message: (error as Error).message, cause: error as Error });
    }
    const raw = answer.headers;
    const answerHeaders: HeaderSource = { get: (name) => single(raw[name]) };
    if (answer.statusCode >= 300) {
      const error = parse(text);
      throw openAiSdk().APIError.generate(
        answer.statusCode,
        error as object | undefined,
        error === undefined ? text.slice(0, 500) : undefined,
        headersOf(raw),
      );
    }
    const data = parse(text) as ChatCompletion | undefined;
    if (!data || typeof data !== 'object' || !Array.isArray(data.choices)) {
      // Classified like a response that broke off: the provider's fault, worth another attempt.
      throw new Error(`the provider answered ${answer.statusCode} with a body that is not a chat completion`);
    }
    return { data, headers: answerHeaders };
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function headersOf(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) headers.set(name, single(value)!);
  return headers;
}
