export interface SplitOptions {
  maxTokens: number;
  /** Tokens of whole lines from the end of a chunk repeated at the start of the next. Default 0. */
  overlapTokens?: number;
  /**
   * The text that starts a block (for a diff, `diff --git`), matched as a
   * literal line prefix: blocks are kept whole in one chunk when they fit, and
   * only a block larger than a chunk is cut between its lines.
   */
  boundary?: string;
}

/**
 * Cuts a text into chunks of at most `maxTokens` tokens, on line (or block)
 * boundaries where possible (a line longer than a chunk is cut inside), each
 * chunk after the first starting with up to `overlapTokens` tokens of whole
 * pieces from the end of the one before, so a reviewer of one chunk sees a
 * little context.
 */
export function splitByTokens(text: string, options: SplitOptions, count: (text: string) => number): string[] {
  const { maxTokens } = options;
  const overlapTokens = options.overlapTokens ?? 0;
  const lines = blocksOf(text, options.boundary).flatMap((block) => {
    const tokens = count(block);
    return tokens <= maxTokens ? [{ text: block, tokens }] : piecesOf(block, maxTokens, count);
  });
  const chunks: string[] = [];
  let current: Array<{ text: string; tokens: number }> = [];
  let tokens = 0;
  for (const line of lines) {
    if (tokens + line.tokens > maxTokens && current.length > 0) {
      chunks.push(current.map((l) => l.text).join(''));
      current = overlapOf(current, Math.min(overlapTokens, maxTokens - line.tokens));
      tokens = current.reduce((sum, l) => sum + l.tokens, 0);
    }
    current.push(line);
    tokens += line.tokens;
  }
  if (current.length > 0) chunks.push(current.map((l) => l.text).join(''));
  return chunks;
}

/** Whole lines from the end of a chunk, as many as fit in `budget` tokens. */
function overlapOf(
  lines: Array<{ text: string; tokens: number }>,
  budget: number,
): Array<{ text: string; tokens: number }> {
  const kept: Array<{ text: string; tokens: number }> = [];
  let used = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as { text: string; tokens: number };
    if (used + line.tokens > budget) break;
    kept.unshift(line);
    used += line.tokens;
  }
  return kept;
}

/** The text cut before every line that starts with `boundary` (the whole text when there is none). */
function blocksOf(text: string, boundary: string | undefined): string[] {
  if (!boundary) return [text];
  const blocks: string[] = [];
  let current = '';
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if (current !== '' && line.startsWith(boundary)) {
      blocks.push(current);
      current = '';
    }
    current += line;
  }
  if (current !== '') blocks.push(current);
  return blocks;
}

/** The text's lines (with their line ends), each cut further if it alone exceeds `maxTokens`. */
function piecesOf(
  text: string,
  maxTokens: number,
  count: (text: string) => number,
): Array<{ text: string; tokens: number }> {
  const pieces: Array<{ text: string; tokens: number }> = [];
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    let rest = line;
    while (rest.length > 0) {
      let tokens = count(rest);
      if (tokens <= maxTokens) {
        pieces.push({ text: rest, tokens });
        break;
      }
      // The longest prefix that fits, found by halving.
      let low = 1;
      let high = rest.length;
      while (low < high) {
        const mid = Math.ceil((low + high) / 2);
        if (count(rest.slice(0, mid)) <= maxTokens) low = mid;
        else high = mid - 1;
      }
      const head = rest.slice(0, low);
      tokens = count(head);
      pieces.push({ text: head, tokens });
      rest = rest.slice(low);
    }
  }
  return pieces;
}
