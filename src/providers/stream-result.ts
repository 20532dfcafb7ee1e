import { ProviderError } from '../contracts/errors.js';
import type { FinishReason, ModelResult, RateLimitInfo, ToolCall, Usage } from '../contracts/types.js';
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
  refusal?: string;
  /** Tool calls so far, by their index in the answer. */
  private toolCalls?: ToolCall[];

  constructor(
    private readonly provider: string,
    public model: string,
  ) {}

  delta(text: string): StreamEvent {
    this.text += text;
    return { type: 'delta', text };
  }

  /** OpenAI-style tool call fragments: the first of a call brings its id and name, the rest pieces of its arguments. */
  toolCallDeltas(
    deltas: ReadonlyArray<{ index: number; id?: string; function?: { name?: string; arguments?: string } }>,
  ): void {
    const calls = (this.toolCalls ??= []);
    for (const delta of deltas) {
      const call = (calls[delta.index] ??= { id: '', name: '', arguments: '' });
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.name += delta.function.name;
      if (delta.function?.arguments) call.arguments += delta.function.arguments;
    }
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
    // A call streamed without any argument text took no arguments: an empty object, as both vendors mean it.
    const toolCalls = this.toolCalls
      ?.filter((call) => call !== undefined)
      .map((call) => (call.arguments === '' ? { ...call, arguments: '{}' } : call));
    if (toolCalls?.length) result.toolCalls = toolCalls;
    if (this.refusal) result.refusal = this.refusal;
    return { type: 'done', result };
  }
}
