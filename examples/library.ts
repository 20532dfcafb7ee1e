// The library example of README.md, kept equal to it by test/readme.test.ts and run there.
import { readFileSync } from 'node:fs';
import { createEngine } from 'fanout';

const diff = readFileSync('examples/pr-review.diff', 'utf8');
const documents = ['The cache keeps answers for a day.', 'Retries wait for the provider\'s hint.'];

const engine = createEngine({
  models: {
    'mock:reviewer': { limits: { requestsPerMinute: 50, inputTokensPerMinute: 30_000, outputTokensPerMinute: 8_000 } },
  },
});

// One call: an id at once, the result when it is ready.
const task = engine.submit({ model: 'mock:reviewer', messages: [{ role: 'user', content: 'Review this diff: …' }], maxTokens: 800 });
task.status().state; // 'queued' | 'rate_limited' | 'processing' | 'completed' | 'failed' | 'cancelled'
const result = await task.result(); // { text, usage, finishReason, model, requestId }

// Many calls: outcomes in input order; a failure is a value, not a rejection.
const outcomes = await engine.gather([
  { model: 'mock:reviewer', system: 'You review code quality.', messages: [{ role: 'user', content: diff }] },
  { model: 'mock:reviewer', system: 'You review architecture.', messages: [{ role: 'user', content: diff }] },
  { model: 'mock:reviewer', system: 'You check the design doc.', messages: [{ role: 'user', content: diff }] },
]);
for (const o of outcomes) console.log(o.ok ? o.result.text : o.error.code);

// Or map items to requests; pass { failFast: true } to stop at the first failure.
const summaries = await engine.map(documents, (doc) => ({ model: 'mock:reviewer', messages: [{ role: 'user', content: doc }] }));
console.log(summaries.length, 'summaries');

// Events: a listener, or an async iterator (engine-wide or per task).
engine.on('task-completed', (e) => console.log(e.taskId, e.result?.usage));
for await (const event of task.events()) console.log(event.type, event.at);

await engine.close();
