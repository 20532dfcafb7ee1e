// RSS of a plain node process (no TypeScript loader) holding 100,000 queued fanout tasks.
// Prints JSON: { beforeMb, afterMb }. Run by bench/memory.ts.
import { createEngine } from '../dist/index.js';

const tasks = Number(process.argv[2] ?? 100_000);
globalThis.gc?.();
const beforeMb = process.memoryUsage().rss / 2 ** 20;
const engine = createEngine({ models: { 'mock:slow': { limits: { requestsPerMinute: 1 } } } });
for (let i = 0; i < tasks; i++) {
  engine.submit({ model: 'mock:slow', messages: [{ role: 'user', content: `queued prompt ${i}` }], maxTokens: 64 });
}
await new Promise((resolve) => setImmediate(resolve));
globalThis.gc?.();
const afterMb = process.memoryUsage().rss / 2 ** 20;
if (engine.pendingCount < tasks - 1) throw new Error('tasks were not held');
process.stdout.write(JSON.stringify({ beforeMb, afterMb }));
await engine.close();
