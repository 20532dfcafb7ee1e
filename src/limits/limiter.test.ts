import { limiterContract } from '../testing/contracts/limiter-contract.js';
import { MemoryLimiter } from './limiter.js';

limiterContract('in memory', () => new MemoryLimiter());
