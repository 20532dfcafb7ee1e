export { SqliteTaskStore, type SqliteTaskStoreOptions } from './sqlite-task-store.js';
export { SqliteCacheStore } from './sqlite-cache-store.js';
export { openDatabase } from './database.js';
