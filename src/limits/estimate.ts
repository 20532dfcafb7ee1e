import { createRequire } from 'node:module';
import { textOf, type ModelRequest } from '../contracts/types.js';

/**
 * Tokens charged at admission for one image: OpenAI's count for a 1024 × 1024
 * image at high detail (85 + 4 tiles × 170), about Anthropic's for 1.1
 * megapixels (w × h / 750 ≈ 1,400, capped lower by its resizing to 1,568 px).
 * The provider's own count settles the difference after the call.
 */
export const IMAGE_TOKENS = 765;

/** Tokens a chat format adds per message (role markers) and per reply (priming). */
const PER_MESSAGE_OVERHEAD = 4;
const PER_REQUEST_OVERHEAD = 3;

/**
 * Runs of letters, of digits, of white space, and of anything else: the
 * pieces a BPE tokenizer's pre-tokenizer cuts text into before merging.
 */
const PIECES = /\p{L}+|\p{N}+|\s+|[^\s\p{L}\p{N}]+/gu;
const LETTER = /\p{L}/u;
const DIGIT = /\p{N}/u;

/**
 * Tokens of a text by a few rules, without a tokenizer's tables: a word is a
 * token per 7 letters (a space before it merges in), ideographs and kana 0.6 a
 * character, digits a token per 3 (a space before them is one more), other
 * symbols a token per 2, a line break or a run of spaces one. Measured
 * against o200k it lands within 17 % on English and German prose, Markdown,
 * TypeScript, a diff, JSON (compact and indented), Japanese, Chinese and a
 * list of numbers; per-model calibration (`InputCalibration`) takes out the
 * level that remains, whatever the provider's tokenizer.
 */
export function estimateTextTokens(text: string): number {
  let tokens = 0;
  let spaceBefore = false;
  for (const match of text.matchAll(PIECES)) {
    const piece = match[0];
    const first = piece.codePointAt(0) as number;
    if (piece.trim() === '') {
      spaceBefore = piece === ' ';
      if (!spaceBefore) tokens += 1;
      continue;
    }
    if (LETTER.test(piece[0] as string))
      tokens += first >= 0x2e80 ? Math.ceil(piece.length * 0.6) : Math.ceil(piece.length / 7);
    else if (DIGIT.test(piece[0] as string)) tokens += Math.ceil(piece.length / 3) + (spaceBefore ? 1 : 0);
    else tokens += Math.ceil(piece.length / 2);
    spaceBefore = false;
  }
  return tokens;
}

type Request = Pick<ModelRequest, 'messages' | 'system' | 'tools' | 'responseFormat'>;

/** Estimates already made, by request: admission and settlement ask for the same one. */
const estimates = new WeakMap<Request, number>();

/**
 * Input tokens of a request before the call, by `estimateTextTokens`: its
 * system prompt and messages with the chat format's overhead, tool calls,
 * images (`IMAGE_TOKENS` each), documents (`documentTokens`), tools and a
 * JSON schema by their JSON text.
 * The engine scales it by what each model's provider counted for earlier
 * calls (`InputCalibration`), and `settle` corrects each call to the
 * provider's own count. Loads no tokenizer.
 */
export function estimateInputTokens(request: Request): number {
  const known = estimates.get(request);
  if (known !== undefined) return known;
  const count = estimateTextTokens;
  let total = PER_REQUEST_OVERHEAD;
  if (request.system) total += PER_MESSAGE_OVERHEAD + count(request.system);
  for (const message of request.messages) {
    total += PER_MESSAGE_OVERHEAD + count(textOf(message.content));
    if (typeof message.content !== 'string')
      for (const part of message.content)
        if (part.type === 'image') total += IMAGE_TOKENS;
        else if (part.type === 'file') total += documentTokens(part.url);
    if (message.toolCalls) for (const call of message.toolCalls) total += count(call.name) + count(call.arguments);
  }
  if (request.tools) total += count(JSON.stringify(request.tools));
  if (request.responseFormat?.type === 'json_schema') total += count(JSON.stringify(request.responseFormat.schema));
  estimates.set(request, total);
  return total;
}

/** Bytes of a PDF counted as one token before the call: its pages' text and images, roughly (the provider's count settles it). */
const PDF_BYTES_PER_TOKEN = 4;

/**
 * Tokens of a document sent as a base64 data: URL: a text document by its
 * text, anything else (a PDF) a token per `PDF_BYTES_PER_TOKEN` bytes. A file
 * named by id counts 0 here: only the provider knows its size, and its count
 * settles the call.
 */
function documentTokens(url: string | undefined): number {
  const comma = url?.indexOf(',') ?? -1;
  if (url === undefined || comma < 0) return 0;
  const bytes = Math.floor(((url.length - comma - 1) * 3) / 4);
  if (url.startsWith('data:text/'))
    return estimateTextTokens(Buffer.from(url.slice(comma + 1), 'base64').toString('utf8'));
  return Math.ceil(bytes / PDF_BYTES_PER_TOKEN);
}

/** Calls counted before a model's calibration stops averaging them all and follows the newest. */
const FULL_AVERAGE_CALLS = 10;
/** Calls smaller than this say little of the ratio (the chat format's overhead dominates them). */
const MIN_CALIBRATING_TOKENS = 32;

/**
 * How a provider counts a model's input, relative to `estimateInputTokens`:
 * the mean of (counted ÷ estimated) over its first 10 answered calls, then a
 * moving average (each new call a tenth). Starts at 1. Admission charges the
 * estimate times this ratio, so a provider whose tokenizer counts a fifth more
 * than the estimate is charged a fifth more after its first answer.
 */
export class InputCalibration {
  private ratioSoFar = 1;
  private calls = 0;

  get ratio(): number {
    return this.ratioSoFar;
  }

  /** Learns from one answered call: its estimate and the input the provider counted (cached and uncached). */
  observe(estimated: number, counted: number): void {
    if (estimated < MIN_CALIBRATING_TOKENS || !(counted > 0)) return;
    const ratio = counted / estimated;
    // A count far off the estimate is another model answering, not a calibration: ignored.
    if (ratio < 0.25 || ratio > 4) return;
    this.calls += 1;
    this.ratioSoFar += (ratio - this.ratioSoFar) / Math.min(this.calls, FULL_AVERAGE_CALLS);
  }

  /** An estimate as the provider is expected to count it. */
  apply(estimated: number): number {
    // Less a hair, so that a whole count times its own ratio stays that count.
    return Math.ceil(estimated * this.ratioSoFar - 1e-9);
  }
}

type CountTokens = (text: string) => number;
let countTokens: CountTokens | undefined;

/**
 * The o200k tokenizer, loaded on first use: its tables take about 70 MB, so
 * only what needs exact token counts loads it (a pipeline's `split` step,
 * which cuts a text into chunks of at most so many tokens).
 */
function tokenizer(): CountTokens {
  if (!countTokens) {
    const require = createRequire(import.meta.url);
    countTokens = (require('gpt-tokenizer') as typeof import('gpt-tokenizer')).countTokens;
  }
  return countTokens;
}

/** Tokens of a piece of text, by the o200k tokenizer. */
export function countTextTokens(text: string): number {
  return tokenizer()(text);
}
