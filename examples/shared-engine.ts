// The shared-engine example of README.md, kept equal to it by test/readme.test.ts and run there.
import { createEngine } from 'fanout';
import { redisParts } from 'fanout/redis';

// Limits, tasks and cached answers on the Redis that every fanout process there shares; closed with the engine.
const engine = createEngine({
  redis: redisParts({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }),
  models: { 'mock:reviewer': { limits: { requestsPerMinute: 600 } } },
});

const ask = { model: 'mock:reviewer', temperature: 0, messages: [{ role: 'user' as const, content: 'one question' }] };
const first = await engine.submit(ask).result();
const again = await engine.submit(ask).result();
console.log(first.cache?.source ?? 'called', 'then', again.cache?.source);

await engine.close();
