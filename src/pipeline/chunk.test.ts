import { describe, expect, it } from 'vitest';
import { splitByTokens } from './chunk.js';

// One token per character keeps the arithmetic visible.
const count = (text: string): number => text.length;

describe('splitByTokens', () => {
  it('packs whole lines into chunks of at most maxTokens', () => {
    expect(splitByTokens('aaaa\nbbbb\ncccc\n', { maxTokens: 10 }, count)).toEqual(['aaaa\nbbbb\n', 'cccc\n']);
  });

  it('repeats up to overlapTokens of whole lines from the end of the previous chunk', () => {
    expect(splitByTokens('aaa\nbbb\nccc\nddd\n', { maxTokens: 8, overlapTokens: 4 }, count)).toEqual([
      'aaa\nbbb\n',
      'bbb\nccc\n',
      'ccc\nddd\n',
    ]);
  });

  it('cuts a line longer than a chunk', () => {
    expect(splitByTokens('abcdefghij\nk\n', { maxTokens: 4 }, count)).toEqual(['abcd', 'efgh', 'ij\n', 'k\n']);
  });

  it('keeps blocks whole when they fit, cutting only a block larger than a chunk', () => {
    const text = 'diff a\n1\n2\ndiff b\n3\ndiff c\n44444\n55555\n';
    expect(splitByTokens(text, { maxTokens: 14, boundary: 'diff ' }, count)).toEqual([
      'diff a\n1\n2\n',
      'diff b\n3\n',
      'diff c\n44444\n',
      '55555\n',
    ]);
  });
});
