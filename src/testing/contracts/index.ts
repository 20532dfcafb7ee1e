// The suites an implementation of fanout's contracts must pass. They run inside Vitest (an optional peer dependency).
export { cacheStoreContract } from './cache-store-contract.js';
export { limiterContract } from './limiter-contract.js';
export { taskRow, taskStoreContract } from './task-store-contract.js';
