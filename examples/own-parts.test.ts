// The example of README.md "Your own parts", kept equal to it by test/readme.test.ts; Vitest runs it with the other tests.
import { limiterContract, taskStoreContract } from 'fanout/testing/contracts';
import { MemoryLimiter } from 'fanout';
import { SqliteTaskStore } from 'fanout/sqlite';

limiterContract('in memory', () => new MemoryLimiter());
taskStoreContract('sqlite', () => new SqliteTaskStore(':memory:'));
