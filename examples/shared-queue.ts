// The queue example of README.md, kept equal to it by test/readme.test.ts and run there beside two workers.
import { TaskQueue } from 'fanout/queue';
import { RedisTaskStore } from 'fanout/redis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const store = new RedisTaskStore({ url });
const queue = new TaskQueue({ url, store });

// Any process submits; the workers on this Redis run the tasks; the outcome is read back by id.
const ids = await queue.submit(
  Array.from({ length: 20 }, (_, i) => ({ model: 'mock:reviewer', messages: [{ role: 'user' as const, content: `change #${i}` }] })),
);
const rows = await Promise.all(ids.map((id) => queue.ended(id)));
console.log(rows.filter((row) => row.state === 'completed').length, 'of', ids.length, 'completed');

await queue.close();
await store.close();
