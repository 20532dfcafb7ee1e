import { ProviderError } from '../contracts/errors.js';
import type {
  FinishReason,
  ModelResult,
  RateLimitInfo,
  ReasoningBlock,
  TokenLogprob,
  ToolCall,
  Usage,
} from '../contracts/types.js';
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
  /** Reasoning blocks so far, in order. */
  private reasoning?: ReasoningBlock[];
  /** Tool calls so far, in the order they began. */
  private toolCalls?: ToolCall[];
  /** Each tool call's index, by the provider's own place for it. */
  private toolPlaces?: Map<number, number>;

  constructor(
    private readonly provider: string,
    public model: string,
  ) {}

  /** A piece of the answer's text, with its tokens' log probabilities when the request asked for them. */
  delta(text: string, logprobs?: TokenLogprob[]): StreamEvent {
    this.text += text;
    if (!logprobs?.length) return { type: 'delta', text };
    (this.logprobs ??= []).push(...logprobs);
    return { type: 'delta', text, logprobs };
  }

  private logprobs?: TokenLogprob[];

  /**
   * A piece of reasoning text. `at` is the provider's place for its block (an
   * Anthropic or Converse content block index); pieces at one place make one
   * block. Without `at`, every piece joins one block (OpenAI-compatible servers).
   */
  reasoningDelta(text: string, at = -1): StreamEvent {
    const block = this.reasoningBlock(at);
    if (block.type === 'thinking') block.text += text;
    return { type: 'reasoning-delta', text };
  }

  /** The signature of the reasoning block at `at` (it comes after the block's text). */
  reasoningSignature(signature: string, at = -1): void {
    const block = this.reasoningBlock(at);
    if (block.type === 'thinking') block.signature = (block.signature ?? '') + signature;
  }

  /** A block of reasoning the provider hid, whole. */
  redactedReasoning(data: string): void {
    (this.reasoning ??= []).push({ type: 'redacted', data });
  }

  private reasoningPlace?: number;

  private reasoningBlock(at: number): ReasoningBlock {
    const blocks = (this.reasoning ??= []);
    const last = blocks[blocks.length - 1];
    if (last?.type === 'thinking' && this.reasoningPlace === at) return last;
    const block: ReasoningBlock = { type: 'thinking', text: '' };
    blocks.push(block);
    this.reasoningPlace = at;
    return block;
  }

  /**
   * A piece of a tool call: the first for a call brings its id and name, the
   * rest pieces of its arguments. `at` is the provider's own place for it (an
   * OpenAI tool call index, an Anthropic or Converse content block index);
   * the event numbers tool calls from 0 in the order they began.
   */
  toolCallDelta(at: number, piece: { id?: string; name?: string; arguments?: string }): StreamEvent {
    const places = (this.toolPlaces ??= new Map());
    const calls = (this.toolCalls ??= []);
    let index = places.get(at);
    if (index === undefined) {
      index = calls.length;
      places.set(at, index);
      calls.push({ id: '', name: '', arguments: '' });
    }
    const call = calls[index] as ToolCall;
    if (piece.id) call.id = piece.id;
    if (piece.name) call.name += piece.name;
    if (piece.arguments) call.arguments += piece.arguments;
    return { type: 'tool-delta', call: { index, ...piece } };
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
    const toolCalls = this.toolCalls?.map((call) => (call.arguments === '' ? { ...call, arguments: '{}' } : call));
    if (toolCalls?.length) result.toolCalls = toolCalls;
    if (this.refusal) result.refusal = this.refusal;
    if (this.reasoning?.length) result.reasoning = this.reasoning;
    if (this.logprobs) result.logprobs = this.logprobs;
    return { type: 'done', result };
  }
}
