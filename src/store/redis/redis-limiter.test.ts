import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { limiterContract } from '../../testing/contracts/index.js';
import { RedisLimiter } from './redis-limiter.js';

// One call per round trip, on the times the cases pass in: the shared budget must answer exactly as memory does.
limiterContract(
  'redis',
  () => new RedisLimiter({ url: inject('redisUrl'), prefix: `test-${randomUUID()}:`, time: 'caller', holdMs: 0 }),
);
