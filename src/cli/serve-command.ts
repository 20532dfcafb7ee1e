import type { FastifyInstance } from 'fastify';
import type { FanoutEngine } from '../create-engine.js';
import type { ConnectionLimits } from '../server/connections.js';
import type { Command } from 'commander';
import { configuredMockModels, engineOptionsFromConfig } from '../config/engine-options.js';
import { FanoutError } from '../contracts/errors.js';
import { createEngine } from '../create-engine.js';
import type { TenantOptions } from '../core/engine.js';
import { ApiKeys } from '../server/api-keys.js';
import { createFanoutServer } from '../server/server.js';
import { shutDownServer } from '../server/shutdown.js';
import { pino } from 'pino';
import { loadConfig } from './config-file.js';
import { loadTools } from './tools-module.js';
import { givingBack, releaseWhenQuiet } from './quiet-collector.js';
import { wholeNumberFlag } from './format.js';
import { DEFAULT_STORE, openRedisStores, openStores, type Stores } from './stores.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';

interface ServeFlags {
  port: string;
  host: string;
  config?: string;
  store?: string;
  redis?: string;
  work?: number;
  key: string[];
  insecureNoAuth?: boolean;
  defaultProvider?: string;
  logLevel: string;
  tenantRpm?: string;
  tenantTpm?: string;
  tenantMaxWaitMs?: string;
  shutdownGraceMs: string;
  metricsKey?: string;
  allowMock?: boolean;
  requestTimeoutMs?: string;
  maxConnections?: string;
  maxStreamsPerTenant?: string;
  tenantConcurrency?: string;
  tenantWeight: string[];
  retentionHours: string;
  tools?: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** `tenant=key` pairs from --key flags and the FANOUT_API_KEYS variable (comma-separated). */
function keyEntries(flags: readonly string[], env: string | undefined): Array<{ tenant: string; key: string }> {
  const pairs = [...flags, ...(env ? env.split(',').filter(Boolean) : [])];
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1)
      throw new FanoutError(
        'invalid_config',
        `--key: expected tenant=KEY, received "${pair.slice(0, Math.max(0, eq)) || '(no tenant)'}=…"`,
      );
    return { tenant: pair.slice(0, eq), key: pair.slice(eq + 1) };
  });
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the task API and an OpenAI-compatible gateway over HTTP, on one engine')
    .option('-p, --port <n>', 'port', '8787')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('-c, --config <file>', 'fanout.yaml with models, limits and providers (default: $FANOUT_CONFIG)')
    .option('--store <spec>', `where tasks and cached answers live: sqlite:PATH or memory (default ${DEFAULT_STORE})`)
    .option(
      '--redis <url>',
      'keep tasks, batches, runs, limits and cached answers on this Redis (redis://host:port), shared with every fanout serve and worker there; tasks go to its queue',
    )
    .option(
      '--work <n>',
      'with --redis: queued tasks this process runs at once beside the workers (default 64; 0: only fanout workers run them)',
      wholeNumberFlag('--work'),
    )
    .option(
      '--key <tenant=KEY>',
      'an API key and its tenant (repeatable; also FANOUT_API_KEYS=t1=k1,t2=k2)',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('--insecure-no-auth', 'serve on a non-loopback address without API keys')
    .option(
      '--metrics-key <KEY>',
      "the operator's key for GET /metrics (also FANOUT_METRICS_KEY); with tenant keys and none of these, /metrics is refused",
    )
    .option('--allow-mock', 'serve any mock:<name> model, not only those the config defines')
    .option(
      '--request-timeout-ms <n>',
      'time for a whole request (headers and body) to arrive before it is answered 408 (default 30000)',
    )
    .option(
      '--max-connections <n>',
      'open connections at once; past it, 503 (default 10000; keep it below the open-file limit)',
    )
    .option(
      '--max-streams-per-tenant <n>',
      'streams, event feeds, WebSockets and waits one tenant may hold open; past it, 429 (default 1000)',
    )
    .option('--default-provider <name>', 'provider for model names without a "provider:" prefix')
    .option(
      '--tools <module>',
      "a JavaScript module whose named exports are the functions pipeline runs' tool steps and agents may call",
    )
    .option(
      '--tenant-rpm <n>',
      "each tenant's own requests per minute, every route: tasks, batches and runs wait for it, the gateway answers 429 with retry-after",
    )
    .option(
      '--tenant-tpm <n>',
      "each tenant's own tokens per minute (estimated before a call, charged as used after), every route as --tenant-rpm",
    )
    .option('--retention-hours <n>', 'how long ended tasks, batches and runs stay in the store (0: for ever)', '168')
    .option(
      '--tenant-concurrency <n>',
      "calls in flight one tenant may have at once (default: half the engine's concurrency)",
    )
    .option(
      '--tenant-weight <tenant=W>',
      "a tenant's share of each model and of the worker pool, relative to the default 1 (repeatable)",
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('--tenant-max-wait-ms <n>', "wait up to this long for a tenant's next permit before answering 429", '0')
    .option(
      '--shutdown-grace-ms <n>',
      'on SIGTERM or Ctrl-C, how long requests in progress may take to finish before their connections close (a second signal: at once)',
      '30000',
    )
    .option(
      '--log-level <level>',
      'request logs on stderr as JSON lines: trace, debug, info, warn, error or silent',
      'info',
    )
    .action(serveAction);
}

const positive = (flag: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n))
    throw new FanoutError('invalid_config', `${flag}: expected a positive number, received "${value}"`);
  return n;
};

/** How tenants share the server's engine, from the flags. */
function tenantOptions(flags: ServeFlags, poolSize: number): TenantOptions {
  const tenantRpm = positive('--tenant-rpm', flags.tenantRpm);
  const tenantTpm = positive('--tenant-tpm', flags.tenantTpm);
  // By default one tenant may hold half the pool: slow calls of one tenant never take every worker.
  const maxInFlight =
    flags.tenantConcurrency === undefined ? Math.max(1, Math.floor(poolSize / 2)) : Number(flags.tenantConcurrency);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new FanoutError(
      'invalid_config',
      `--tenant-concurrency: expected a whole number ≥ 1, received "${flags.tenantConcurrency}"`,
    );
  const weights: Record<string, number> = {};
  for (const pair of flags.tenantWeight) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new FanoutError('invalid_config', `--tenant-weight: expected tenant=WEIGHT, received "${pair}"`);
    weights[pair.slice(0, eq)] = positive('--tenant-weight', pair.slice(eq + 1)) as number;
  }
  const limits =
    tenantRpm === undefined && tenantTpm === undefined
      ? undefined
      : {
          ...(tenantRpm ? { requestsPerMinute: tenantRpm } : {}),
          ...(tenantTpm ? { tokensPerMinute: tenantTpm } : {}),
        };
  return { maxInFlight, weights, ...(limits ? { limits } : {}) };
}

/** `fanout serve`: one engine from the config and the store, the server on it, until a signal. */
async function serveAction(flags: ServeFlags): Promise<void> {
  const keys = new ApiKeys(keyEntries(flags.key, process.env.FANOUT_API_KEYS));
  if (keys.size === 0 && !LOOPBACK.test(flags.host) && !flags.insecureNoAuth) {
    throw new FanoutError(
      'invalid_config',
      `refusing to serve on ${flags.host} without API keys: pass --key tenant=KEY (or FANOUT_API_KEYS), or --insecure-no-auth`,
    );
  }
  const { port, graceMs, retentionHours, connections } = serveSettings(flags);
  const config = await loadConfig(flags.config);
  const tools = await loadTools(flags.tools);
  if (flags.redis !== undefined && flags.store !== undefined)
    throw new FanoutError(
      'invalid_config',
      '--store and --redis: with --redis, tasks, batches and runs are kept in Redis; give one of them',
    );
  if (flags.work !== undefined && flags.redis === undefined)
    throw new FanoutError('invalid_config', '--work: only with --redis (the queue it works on)');
  const stores =
    flags.redis === undefined
      ? openStores(flags.store ?? DEFAULT_STORE, true)
      : await openRedisStores(flags.redis, true);
  const tenants = tenantOptions(flags, config.concurrency ?? 256);
  // Ended tasks answer from the store: memory keeps only the newest thousand of them.
  const options = engineOptionsFromConfig(config, {
    store: stores.tasks,
    cache: stores.cache ? { store: stores.cache, ttlMs: config.cacheTtlMs } : false,
    limiter: stores.limiter,
    tenants,
    maxEndedTasks: 1_000,
    // With the tasks in Redis, the queue hands this process its share of them, and no other's.
    resume: stores.redisUrl === undefined,
  });
  // Any client could name a new mock:<name> in every request; only those the config defines are served unless told.
  if (!flags.allowMock) options.mock.serveOnly(configuredMockModels(config));
  const engine = createEngine(options);
  await engine.recovered;
  const shared = stores.redisUrl === undefined ? undefined : await sharedTasks(stores, engine, flags.work ?? 64);
  const configured = Object.keys(config.models ?? {}).filter((m) => m !== '*' && !m.endsWith(':*'));
  const models = [...new Set([...configured, ...configuredMockModels(config).map((name) => `mock:${name}`)])];
  // Lines go out in blocks of 32 KiB, and at least every 100 ms: one write per line would cost a
  // loaded server a fifth of its time.
  const logger = pino(
    { level: flags.logLevel },
    pino.destination({ dest: 2, sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024, periodicFlush: 100 }),
  );
  const tenantQuota = tenants.limits
    ? { limits: tenants.limits, maxWaitMs: Number(flags.tenantMaxWaitMs) || 0 }
    : undefined;
  const metricsKey = flags.metricsKey ?? process.env.FANOUT_METRICS_KEY;
  const metricsKeys = new ApiKeys(metricsKey ? [{ tenant: 'operator', key: metricsKey }] : []);
  const app = createFanoutServer({
    engine,
    ...(shared ? { tasks: shared.tasks } : {}),
    keys,
    metricsKeys,
    models,
    defaultProvider: flags.defaultProvider,
    logger,
    tenantQuota,
    connections,
    retentionMs: retentionHours * 3_600_000,
    tools,
  });
  // Listening for a signal before saying where it listens: a SIGTERM right after that line still shuts down cleanly.
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const address = await app.listen({ port, host: flags.host });
  process.stderr.write(
    `fanout serve: listening on ${address} (tasks in ${stores.where}${keys.size === 0 ? ', no API keys' : `, ${keys.size} API key${keys.size === 1 ? '' : 's'}`})\n`,
  );
  const tenantFlags = flags.tenantRpm ?? flags.tenantTpm ?? flags.tenantConcurrency ?? flags.tenantWeight[0];
  if (shared && tenantFlags !== undefined)
    process.stderr.write(
      'fanout serve: the --tenant-* flags pace the gateway and the queued tasks this server runs itself; fanout workers run theirs without them\n',
    );
  // A server that goes quiet after a flood gives back the memory the flood grew.
  const stopCollecting = releaseWhenQuiet(engine, givingBack(stores.tasks));
  const close = async (): Promise<void> => {
    stopCollecting();
    await shared?.close();
    await stores.close();
  };
  await serveUntilSignalled(signalled, app, engine, { close }, logger, graceMs);
}

/**
 * With `--redis`: the task API's, batches' and runs' tasks go to the queue,
 * and this process runs `work` of them at once beside any `fanout worker`.
 */
async function sharedTasks(stores: Stores, engine: FanoutEngine, work: number) {
  const { TaskQueue, QueuedTasks } = await import('../queue/index.js');
  const store = stores.tasks as RedisTaskStore;
  const queue = new TaskQueue({ url: stores.redisUrl as string, store });
  if (work > 0) queue.work(engine, { concurrency: work });
  const tasks = new QueuedTasks({ queue, store, clock: engine.clock, pricing: engine });
  await tasks.ready;
  return {
    tasks,
    close: async () => {
      tasks.close();
      await queue.close();
    },
  };
}

/** The numbers and names the serve flags give, checked: each wrong one is an error naming the flag. */
function serveSettings(flags: ServeFlags): {
  port: number;
  graceMs: number;
  retentionHours: number;
  connections: ConnectionLimits;
} {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new FanoutError('invalid_config', `--port: expected 0-65535, received "${flags.port}"`);
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (!levels.includes(flags.logLevel))
    throw new FanoutError(
      'invalid_config',
      `--log-level: expected one of ${levels.join(', ')}, received "${flags.logLevel}"`,
    );
  const graceMs = Number(flags.shutdownGraceMs);
  if (!Number.isInteger(graceMs) || graceMs < 0)
    throw new FanoutError(
      'invalid_config',
      `--shutdown-grace-ms: expected a whole number of milliseconds, received "${flags.shutdownGraceMs}"`,
    );
  const wholeNumber = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new FanoutError('invalid_config', `${flag}: expected a whole number ≥ 1, received "${value}"`);
    return n;
  };
  const connections = {
    requestTimeoutMs: wholeNumber('--request-timeout-ms', flags.requestTimeoutMs),
    maxConnections: wholeNumber('--max-connections', flags.maxConnections),
    maxStreamsPerTenant: wholeNumber('--max-streams-per-tenant', flags.maxStreamsPerTenant),
  };
  const retentionHours = Number(flags.retentionHours);
  if (!(retentionHours >= 0) || !Number.isFinite(retentionHours))
    throw new FanoutError(
      'invalid_config',
      `--retention-hours: expected a number ≥ 0, received "${flags.retentionHours}"`,
    );
  return { port, graceMs, retentionHours, connections };
}

/** Serves until `signalled` (SIGTERM or SIGINT), then shuts down within the grace period (a second signal: at once). */
async function serveUntilSignalled(
  signalled: Promise<void>,
  app: FastifyInstance,
  engine: FanoutEngine,
  stores: { close(): Promise<void> },
  logger: pino.Logger,
  graceMs: number,
): Promise<void> {
  await signalled;
  process.stderr.write(
    `fanout serve: stopping; requests in progress have ${graceMs} ms to finish (signal again to stop now), unfinished tasks stay in the store for the next start\n`,
  );
  const now = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  try {
    const { forced } = await shutDownServer(app, engine, { graceMs, clock: engine.clock, now });
    if (forced) process.stderr.write('fanout serve: closed the connections still open\n');
    await stores.close();
  } finally {
    // However the shutdown went, the last lines reach the log.
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
  }
}
