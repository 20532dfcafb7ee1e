#!/usr/bin/env node
// Writes examples/pr-review.diff: four file sections sized so that, split one
// section per chunk and read by mock:chunk-reviewer (100 ms per input token),
// the four reviews take 35 s, 30 s, 30 s and 25 s, as in the seed's table.
// Run after `npm run build`: node examples/make-pr-diff.mjs
import { writeFileSync } from 'node:fs';
import { countTextTokens } from '../dist/limits/estimate.js';
import { MockProvider } from '../dist/providers/mock/mock-provider.js';

const PROMPT = 'Review this part of the diff and list its risks:\n';
const targets = [350, 300, 300, 250]; // mock input tokens per chunk review
const files = ['src/limits/limiter.ts', 'src/core/scheduler.ts', 'src/core/engine.ts', 'README.md'];
const mock = new MockProvider();

function section(file, length) {
  let text = `diff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n@@ -1,40 +1,52 @@\n`;
  for (let i = 0; text.length < length; i++) {
    text += i % 3 === 0 ? `-  const old${i} = compute(${i}, options);\n` : `+  const value${i} = await compute(${i}, { ...options, retry: true });\n`;
  }
  // Trim to the exact length, ending the section with a newline.
  return `${text.slice(0, length - 1)}\n`;
}

const sections = targets.map((tokens, i) => {
  // The mock counts 3 + (4 + ceil(chars / 4)) tokens for one user message.
  const length = 4 * (tokens - 7) - PROMPT.length;
  const text = section(files[i], length);
  const counted = mock.countInputTokens({ messages: [{ role: 'user', content: PROMPT + text }] });
  if (counted !== tokens) throw new Error(`section ${i}: ${counted} tokens, wanted ${tokens}`);
  return text;
});
const sizes = sections.map((s) => countTextTokens(s));
console.log(`o200k tokens per section: ${sizes.join(', ')}; a chunk limit between ${Math.max(...sizes)} and ${Math.min(...sizes.slice(1).map((s, i) => s + sizes[i])) - 1} keeps one section per chunk`);
writeFileSync(new URL('./pr-review.diff', import.meta.url), sections.join(''));
