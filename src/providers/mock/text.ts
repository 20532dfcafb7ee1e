import { textOf, type ChatMessage } from '../../contracts/types.js';

const WORDS = [
  'the',
  'change',
  'looks',
  'sound',
  'but',
  'consider',
  'edge',
  'cases',
  'in',
  'error',
  'handling',
  'and',
  'tests',
  'for',
  'retry',
  'paths',
  'naming',
  'is',
  'clear',
  'module',
  'boundaries',
  'hold',
  'latency',
  'budget',
  'fits',
  'cache',
  'keys',
  'should',
  'include',
  'tenant',
  'scope',
  'limits',
  'are',
  'respected',
  'under',
  'load',
  'a',
  'simpler',
  'design',
  'would',
  'split',
  'this',
  'function',
  'into',
  'two',
  'steps',
  'with',
  'one',
  'owner',
  'of',
  'state',
  'overall',
  'approve',
  'after',
  'small',
  'fixes',
  'documentation',
  'needs',
  'an',
  'example',
  'here',
  'too',
];

/** FNV-1a over the prompt: the same prompt always gives the same answer. */
export function hashPrompt(model: string, system: string | undefined, messages: readonly ChatMessage[]): number {
  let hash = 0x811c9dc5;
  const mix = (text: string): void => {
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    hash ^= 0xff;
    hash = Math.imul(hash, 0x01000193);
  };
  mix(model);
  if (system) mix(system);
  for (const message of messages) mix(textOf(message.content));
  return hash >>> 0;
}

/** `count` words chosen from the prompt's hash; one word is one output token. */
export function mockWords(hash: number, count: number): string[] {
  const words: string[] = [];
  let state = hash || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words.push(WORDS[(state >>> 0) % WORDS.length] as string);
  }
  return words;
}
