import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { Agent, Dispatcher } from 'undici';
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
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(options: { baseURL: string; apiKey: string; timeoutMs: number; defaultHeaders?: Record<string, string> }) {
    const url = new URL(options.baseURL);
    this.origin = url.origin;
    this.path = `${url.pathname.replace(/\/$/, '')}/chat/completions`;
    this.headers = { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${options.apiKey}`, ...options.defaultHeaders };
    this.timeoutMs = options.timeoutMs;
    this.agent = new (undiciModule().Agent)({ keepAliveTimeout: 30_000, connect: { timeout: Math.min(options.timeoutMs, 30_000) } });
  }

  async create(params: ChatCompletionCreateParamsNonStreaming, signal: AbortSignal): Promise<{ data: ChatCompletion; headers: HeaderSource }> {
    const sdk = openAiSdk();
    let answer: Dispatcher.ResponseData;
    let text: string;
    try {
      answer = await this.agent.request({
        origin: this.origin,
        path: this.path,
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(params),
        signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      text = await answer.body.text();
    } catch (error) {
      if (signal.aborted) throw new sdk.APIUserAbortError();
      const { HeadersTimeoutError, BodyTimeoutError, ConnectTimeoutError } = undiciModule().errors;
      if (error instanceof HeadersTimeoutError || error instanceof BodyTimeoutError || error instanceof ConnectTimeoutError) {
        throw new sdk.APIConnectionTimeoutError();
      }
      throw new sdk.APIConnectionError({ message: (error as Error).message, cause: error as Error });
    }
    const raw = answer.headers;
    const headers: HeaderSource = { get: (name) => single(raw[name]) };
    if (answer.statusCode >= 300) {
      const body = parse(text);
      throw sdk.APIError.generate(answer.statusCode, body as object | undefined, body === undefined ? text.slice(0, 500) : undefined, headersOf(raw));
    }
    const data = parse(text) as ChatCompletion | undefined;
    if (!data || typeof data !== 'object' || !Array.isArray(data.choices)) {
      // Classified like a response that broke off: the provider's fault, worth another attempt.
      throw new Error(`the provider answered ${answer.statusCode} with a body that is not a chat completion`);
    }
    return { data, headers };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

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
