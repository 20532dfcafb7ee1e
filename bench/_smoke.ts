import { createEngine } from '../src/index.js';
const engine = createEngine({ models: { 'mock:a': { limits: { requestsPerMinute: 600000 } } } });
const N = 200000;
const reqs = Array.from({ length: N }, (_, i) => ({ model: 'mock:a', messages: [{ role: 'user' as const, content: `hello ${i}` }] }));
let t0 = performance.now();
const out = await engine.gather(reqs);
let t1 = performance.now();
console.log('ok', out.filter(o => o.ok).length, (N / ((t1 - t0) / 1000)).toFixed(0), 'tasks/s');
console.log(out[5]);
