export { ManualClock, flushMicrotasks } from '../contracts/manual-clock.js';
