import { taskStoreContract } from '../../testing/contracts/task-store-contract.js';
import { MemoryTaskStore } from './memory-task-store.js';

taskStoreContract('memory', () => new MemoryTaskStore());
