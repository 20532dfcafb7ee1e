import { ProviderError } from '../contracts/errors.js';
import type { FinishReason, ModelResult, RateLimitInfo, Usage } from '../contracts/types.js';
import type { StreamEvent } from '../contracts/provider.js';

/**
 * What a provider's stream has said so far, turned into fanout's events: each
 * text delta, then one `done` with the whole answer. A stream that ends
 * without its usage (cut short) is a failed attempt, never a partial answer.
 */
export class StreamResult {
  text = '';
  usage?: Usage;
  finishReason: FinishReason = 'stop';
  requestId?: string;
  rateLimit?: RateLimitInfo;

  constructor(
    private readonly provider: string,
    public model: string,
  ) {}

  delta(text: string): StreamEvent {
    this.text += text;
    return { type: 'delta', text };
  }

  done(complete = true): StreamEvent {
    if (!complete || !this.usage) {
      throw new ProviderError(
        'server_error',
        `${this.provider}: the stream ended before its end (no usage or stop event)`,
        { provider: this.provider, retryable: true },
      );
    }
    const result: ModelResult = {
      text: this.text,
      usage: this.usage,
      finishReason: this.finishReason,
      model: this.model,
      requestId: this.requestId,
      rateLimit: this.rateLimit,
    };
    return { type: 'done', result };
  }
}
