import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { seededRandom } from '../../contracts/random.js';
import { give, refill, take, waitTime, type BucketSpec, type BucketState } from '../../limits/token-bucket.js';
import { bucketLua } from './limiter-scripts.js';

/** One step on a bucket: refill to `now`, then take, give or only ask the wait for `cost`. */
interface Vector {
  spec: BucketSpec;
  state: BucketState;
  now: number;
  op: 'take' | 'give' | 'wait';
  cost: number;
}

/** Runs each vector through lua/bucket.lua in Redis: the level, time and wait it ends with. */
const HARNESS = `
local out = {}
for i, v in ipairs(cjson.decode(ARGV[1])) do
  local b = { limit = v.spec.limit, window = v.spec.windowMs, cap = v.spec.capacity, transit = v.spec.transitMs,
    level = v.state.level, at = v.state.updatedAt }
  refill(b, v.now)
  local w = wait_for(b, v.cost)
  if v.op == 'take' and w == 0 then take(b, v.cost, 0) end
  if v.op == 'give' then give(b, v.cost) end
  out[i] = { num(b.level), num(b.at), tostring(w) }
end
return cjson.encode(out)
`;

function inMemory(v: Vector): [number, number, number] {
  const wait = waitTime(v.spec, v.state, v.now, v.cost);
  if (v.op === 'take') {
    const result = take(v.spec, v.state, v.now, v.cost);
    return [result.state.level, result.state.updatedAt, wait];
  }
  const after = v.op === 'give' ? give(v.spec, v.state, v.now, v.cost) : refill(v.spec, v.state, v.now);
  return [after.level, after.updatedAt, wait];
}

/** The cases of token-bucket.test.ts, then 2,000 drawn at random: odd limits (7 a minute), debts, transit, big costs. */
function vectors(): Vector[] {
  const perMinute = (limit: number, capacity = limit, transitMs = 0): BucketSpec => ({
    limit,
    windowMs: 60_000,
    capacity,
    transitMs,
  });
  const at = (spec: BucketSpec, tokens: number, updatedAt = 0): BucketState => ({
    level: tokens * spec.windowMs,
    updatedAt,
  });
  const fixed: Vector[] = [
    { spec: perMinute(60), state: at(perMinute(60), 0), now: 250, op: 'wait', cost: 1 },
    { spec: perMinute(7), state: at(perMinute(7), 0), now: 8571, op: 'take', cost: 1 },
    { spec: perMinute(7), state: at(perMinute(7), 0), now: 8572, op: 'take', cost: 1 },
    { spec: perMinute(60_000, 1000), state: at(perMinute(60_000, 1000), 1000), now: 0, op: 'take', cost: 3000 },
    { spec: perMinute(60, 60, 250), state: at(perMinute(60), 60), now: 0, op: 'take', cost: 1 },
    { spec: perMinute(60, 1, 5000), state: at(perMinute(60, 1), 1), now: 0, op: 'take', cost: 1 },
    { spec: perMinute(1000), state: at(perMinute(1000), 100), now: 0, op: 'give', cost: -300 },
    { spec: perMinute(60, 10), state: at(perMinute(60, 10), 10), now: 0, op: 'give', cost: 5 },
  ];
  const random = seededRandom(14);
  const pick = <T>(items: T[]): T => items[Math.floor(random.next() * items.length)] as T;
  const drawn = Array.from({ length: 2000 }, (): Vector => {
    const windowMs = pick([60_000, 86_400_000]);
    const limit = pick([1, 7, 60, 450, 1200, 90_000, 2_000_000]);
    const capacity = Math.max(1, Math.floor(limit * pick([1, 0.5, 1 / 60, 0.013])));
    const spec = { limit, windowMs, capacity, transitMs: pick([0, 100, 250]) };
    const level = Math.floor((random.next() * 1.5 - 0.4) * capacity * windowMs);
    const updatedAt = Math.floor(random.next() * 1e6);
    return {
      spec,
      state: { level, updatedAt },
      now: updatedAt + pick([-5, 0, 1, 999, 60_000, 3_600_000]),
      op: pick(['take', 'give', 'wait'] as const),
      cost: pick([0, 1, 3, Math.floor(capacity / 2), capacity, limit, 17]) * pick([1, -1, 1, 1]),
    };
  });
  return [...fixed, ...drawn].filter((v) => v.op === 'give' || v.cost >= 0);
}

describe('the token bucket in Lua', () => {
  const redis = new Redis(inject('redisUrl'));
  afterAll(() => redis.quit());

  it('ends every case of a table at exactly the level, time and wait the in-memory bucket does', async () => {
    const table = vectors();
    const answer = (await redis.eval(`${bucketLua()}\n${HARNESS}`, 0, JSON.stringify(table))) as string;
    const fromLua = (JSON.parse(answer) as Array<[string, string, string]>).map(
      ([level, updatedAt, wait]) => [Number(level), Number(updatedAt), Number(wait)] as const,
    );
    expect(fromLua).toEqual(table.map(inMemory));
    // The table reaches every path: takes granted and refused, debts, and a full bucket's transit.
    expect(table.filter((v) => v.op === 'take' && inMemory(v)[2] === 0).length).toBeGreaterThan(100);
    expect(table.filter((v) => v.op === 'take' && inMemory(v)[2] > 0).length).toBeGreaterThan(100);
    expect(table.filter((v) => inMemory(v)[0] < 0).length).toBeGreaterThan(50);
  });
});
