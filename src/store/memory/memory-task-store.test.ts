import { taskStoreContract } from '../../../test/contracts/task-store.contract.js';
import { MemoryTaskStore } from './memory-task-store.js';

taskStoreContract('memory', () => new MemoryTaskStore());
