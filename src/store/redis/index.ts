export { RedisCacheStore, type RedisCacheStoreOptions } from './redis-cache-store.js';
export { RedisLimiter, type RedisLimiterOptions } from './redis-limiter.js';
export { RedisTaskStore, type RedisTaskStoreOptions } from './redis-task-store.js';
export { redisParts, type RedisPartsOptions } from './redis-parts.js';
