#!/usr/bin/env node
// Writes a JSONL batch for fanout: node scripts/make-batch.mjs --lines 10000 --out big.jsonl [--models mock:a,mock:b]
// Lines alternate between the short form and OpenAI's batch format; prompts are deterministic.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000' },
    out: { type: 'string' },
    models: { type: 'string', default: 'mock:reviewer,mock:summarizer' },
    'max-tokens': { type: 'string', default: '256' },
  },
});
if (!values.out) {
  console.error('usage: make-batch.mjs --lines N --out FILE [--models a,b] [--max-tokens N]');
  process.exit(2);
}
const models = values.models.split(',');
const maxTokens = Number(values['max-tokens']);
const topics = [
  'retry logic',
  'cache keys',
  'token buckets',
  'error messages',
  'the README',
  'input validation',
  'schema migrations',
  'SIGTERM handling',
];
const lines = [];
for (let i = 0; i < Number(values.lines); i++) {
  const model = models[i % models.length];
  const prompt = `Review change #${i} touching ${topics[i % topics.length]}: list the risks and one test to add.`;
  if (i % 2 === 0) {
    lines.push(JSON.stringify({ id: `req-${i}`, model, prompt, max_tokens: maxTokens }));
  } else {
    lines.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model,
          messages: [
            { role: 'system', content: 'You are a careful code reviewer.' },
            { role: 'user', content: prompt },
          ],
          max_tokens: maxTokens,
        },
      }),
    );
  }
}
writeFileSync(values.out, `${lines.join('\n')}\n`);
console.error(`wrote ${lines.length} lines to ${values.out}`);
