import type { Command } from 'commander';
import { engineOptionsFromConfig } from '../config/engine-options.js';
import { FanoutError } from '../contracts/errors.js';
import { createEngine } from '../create-engine.js';
import { givingBack, releaseWhenQuiet } from './quiet-collector.js';
import { loadConfig } from './config-file.js';
import { positiveNumber } from './format.js';
import { redactedUrl } from './stores.js';

interface WorkerFlags {
  redis?: string;
  config?: string;
  concurrency?: number;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run tasks queued on a Redis by any fanout process, under the limits every process there shares')
    .requiredOption('--redis <url>', 'the Redis the work is queued on (redis://host:port)')
    .option('-c, --config <file>', 'fanout.yaml with models, limits and providers (default: $FANOUT_CONFIG)')
    .option('--concurrency <n>', 'tasks run at once (default 64)', positiveNumber('--concurrency'))
    .action(async (flags: WorkerFlags) => {
      await workerAction(flags);
    });
}

/** Works until SIGTERM or SIGINT; then finishes the tasks it holds and stops. */
async function workerAction(flags: WorkerFlags): Promise<void> {
  const url = flags.redis as string;
  if (!/^rediss?:\/\//.test(url)) {
    throw new FanoutError('invalid_config', `--redis: expected redis://host:port, received "${redactedUrl(url)}"`);
  }
  const config = await loadConfig(flags.config);
  const concurrency = Math.floor(flags.concurrency ?? 64);
  const { RedisCacheStore, RedisLimiter, RedisTaskStore } = await import('../store/redis/index.js');
  const { TaskQueue } = await import('../queue/task-queue.js');
  const limiter = new RedisLimiter({ url });
  try {
    await limiter.ping(5000);
  } catch (error) {
    await limiter.close();
    throw new FanoutError('invalid_config', `--redis: cannot reach ${redactedUrl(url)}: ${(error as Error).message}`);
  }
  const store = new RedisTaskStore({ url });
  const cache = new RedisCacheStore({ url });
  const engine = createEngine(
    engineOptionsFromConfig(config, {
      store,
      limiter,
      cache: { store: cache, ttlMs: config.cacheTtlMs },
      resume: false,
      concurrency: Math.max(concurrency, config.concurrency ?? 0),
    }),
  );
  // Listening for a signal before saying it runs: a SIGTERM right after that line still stops it cleanly.
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const queue = new TaskQueue({ url, store });
  queue.work(engine, { concurrency });
  // A worker that goes quiet after a burst gives back the heap the burst grew.
  const stopReleasing = releaseWhenQuiet(engine, givingBack(store));
  process.stderr.write(`fanout worker: running tasks queued on ${redactedUrl(url)}, ${concurrency} at once\n`);
  await signalled;
  stopReleasing();
  process.stderr.write('fanout worker: stopping; the tasks in progress finish first\n');
  await queue.close();
  await engine.close();
  await Promise.allSettled([limiter.close(), cache.close(), store.close()]);
}
