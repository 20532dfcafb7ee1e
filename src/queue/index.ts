// Work shared through Redis: a queue any process submits tasks to and any number of workers run.
export { TaskQueue, type TaskQueueOptions, type WorkerOptions } from './task-queue.js';
export { queuedRunner } from './queued-runner.js';
export { QueuedTasks, type QueuedTasksOptions } from './queued-tasks.js';
export { TaskFeed, type FedEvent } from './task-feed.js';
