import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { taskStoreContract } from '../../testing/contracts/index.js';
import { RedisTaskStore } from './redis-task-store.js';

// Each store its own prefix on the one test server, so that tests never see each other's tasks.
taskStoreContract('redis', () => new RedisTaskStore({ url: inject('redisUrl'), prefix: `test-${randomUUID()}:` }));
