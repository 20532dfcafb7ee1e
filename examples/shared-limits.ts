// The shared-limits example of README.md, kept equal to it by test/readme.test.ts and run there.
import { createEngine } from 'fanout';
import { RedisLimiter } from 'fanout/redis';

// Every process given a limiter on this Redis draws from one set of buckets per limit key.
const limiter = new RedisLimiter({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const engine = createEngine({
  limiter,
  models: { 'mock:reviewer': { limits: { requestsPerMinute: 600, maxConcurrent: 8 } } },
});

const items = Array.from({ length: 40 }, (_, i) => `item ${i}`);
const answers = await engine.map(items, (item) => ({ model: 'mock:reviewer', messages: [{ role: 'user', content: item }] }));
console.log(answers.length, 'answers,', limiter.roundTrips(), 'round trips to Redis');

await engine.close();
await limiter.close();
