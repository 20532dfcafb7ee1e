import { createInterface } from 'node:readline';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { engineOptionsFromConfig } from '../config/engine-options.js';
import type { FanoutConfig } from '../config/schema.js';
import { runBatch, type BatchProgress, type BatchSummary } from '../batch/run-batch.js';
import { createEngine, type FanoutEngine } from '../create-engine.js';
import { FanoutError } from '../contracts/errors.js';
import type { LimitSpec } from '../contracts/limiter.js';
import { batchIdFor, refuseInputAsOutput, openInput, openOutput, type OutputFile } from './batch-files.js';
import { DEFAULT_STORE, openRedisStores, openStores, type Stores } from './stores.js';
import type { RedisTaskStore } from '../store/redis/redis-task-store.js';
import { positiveNumber } from './format.js';
import { loadConfig } from './config-file.js';
import { EXIT } from './exit-codes.js';
import { formatCount, formatMs, formatPercent, unconfiguredNotice } from './format.js';

interface BatchFlags {
  output: string;
  redis?: string;
  config?: string;
  concurrency?: number;
  model?: string;
  defaultProvider?: string;
  rpm?: number;
  rpd?: number;
  tpm?: number;
  itpm?: number;
  otpm?: number;
  maxConcurrent?: number;
  burstSeconds?: number;
  maxAttempts?: number;
  window?: number;
  json?: boolean;
  progress?: boolean;
  cache?: boolean;
  store?: string;
  fresh?: boolean;
}

export function registerBatchCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('batch')
    .usage('<input.jsonl | -> -o <output.jsonl> [--config fanout.yaml] [flags]')
    .description(
      'run every line of a JSONL file (OpenAI batch format or {"model","prompt"}) and write one result line per input line, in order',
    )
    .argument('<input>', 'input JSONL file, or - for standard input')
    .requiredOption(
      '-o, --output <file>',
      'output JSONL file, continued on a rerun (- for standard output; the summary then goes to standard error)',
    )
    .option('-c, --config <file>', 'fanout.yaml with models, limits and providers (default: $FANOUT_CONFIG)')
    .option('--model <provider:model>', 'run every line on this model instead of the one it names')
    .option('--default-provider <name>', 'provider for model names without a "provider:" prefix')
    .option('--concurrency <n>', 'calls in flight across all models', positiveNumber('--concurrency'))
    .option('--rpm <n>', 'requests per minute, for every model', positiveNumber('--rpm'))
    .option('--rpd <n>', 'requests per day, for every model', positiveNumber('--rpd'))
    .option('--tpm <n>', 'tokens per minute, for every model', positiveNumber('--tpm'))
    .option('--itpm <n>', 'input tokens per minute, for every model', positiveNumber('--itpm'))
    .option('--otpm <n>', 'output tokens per minute, for every model', positiveNumber('--otpm'))
    .option('--max-concurrent <n>', 'calls in flight per model', positiveNumber('--max-concurrent'))
    .option(
      '--burst-seconds <n>',
      'seconds of a per-minute limit that may go at once (default 60)',
      positiveNumber('--burst-seconds'),
    )
    .option('--max-attempts <n>', 'attempts per line, the first included (default 5)', positiveNumber('--max-attempts'))
    .option(
      '--window <n>',
      'lines in flight at once; reading pauses beyond it (default 10000)',
      positiveNumber('--window'),
    )
    .option('--store <spec>', 'where tasks and cached answers live: sqlite:PATH or memory', DEFAULT_STORE)
    .option(
      '--redis <url>',
      'keep the tasks, limits and cached answers on this Redis (redis://host:port); fanout workers there run lines too',
    )
    .option('--fresh', 'start the batch over: overwrite the output and forget its stored tasks')
    .option('--no-cache', 'no result cache and no sharing of identical calls in flight')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (input: string, flags: BatchFlags) => {
      setExitCode(await batchAction(input, flags));
    });
}

/**
 * With the tasks in Redis: the batch's lines go to the queue, and this
 * process works on it too (so a batch finishes with no other worker), beside
 * any `fanout worker` on that Redis.
 */
async function sharedWork(stores: Stores, engine: FanoutEngine, concurrency = 64) {
  const { TaskQueue, queuedRunner } = await import('../queue/index.js');
  const store = stores.tasks as RedisTaskStore;
  const queue = new TaskQueue({ url: stores.redisUrl as string, store });
  queue.work(engine, { concurrency });
  return { queue, runOn: queuedRunner(queue) };
}

function withFlagLimits(config: FanoutConfig, flags: BatchFlags): FanoutConfig {
  const limits: LimitSpec = {};
  if (flags.rpm !== undefined) limits.requestsPerMinute = flags.rpm;
  if (flags.rpd !== undefined) limits.requestsPerDay = flags.rpd;
  if (flags.tpm !== undefined) limits.tokensPerMinute = flags.tpm;
  if (flags.itpm !== undefined) limits.inputTokensPerMinute = flags.itpm;
  if (flags.otpm !== undefined) limits.outputTokensPerMinute = flags.otpm;
  if (flags.maxConcurrent !== undefined) limits.maxConcurrent = Math.floor(flags.maxConcurrent);
  if (flags.burstSeconds !== undefined) limits.burstSeconds = flags.burstSeconds;
  const models = { ...config.models };
  if (Object.keys(limits).length > 0) {
    // Flags win over the config for every model, and set limits for models the config does not name.
    for (const [name, settings] of Object.entries(models)) {
      if (settings.group === undefined) models[name] = { ...settings, limits: { ...settings.limits, ...limits } };
    }
    models['*'] = { ...models['*'], limits: { ...models['*']?.limits, ...limits } };
  }
  return {
    ...config,
    models,
    concurrency: flags.concurrency === undefined ? config.concurrency : Math.floor(flags.concurrency),
    retry:
      flags.maxAttempts === undefined ? config.retry : { ...config.retry, maxAttempts: Math.floor(flags.maxAttempts) },
  };
}

async function batchAction(input: string, flags: BatchFlags): Promise<number> {
  const config = withFlagLimits(await loadConfig(flags.config), flags);
  refuseInputAsOutput(input, flags.output);
  const inputStream = await openInput(input);
  const stores =
    flags.redis === undefined
      ? openStores(flags.store ?? DEFAULT_STORE, flags.cache !== false)
      : await openRedisStores(flags.redis, flags.cache !== false);
  const toStdout = flags.output === '-';
  const batchId = toStdout ? undefined : batchIdFor(input, flags.output);
  const notResumable = whyNotResumable(input, toStdout, stores.where);
  if (notResumable && flags.progress !== false)
    process.stderr.write(`fanout batch: this batch cannot fully resume after an interruption: ${notResumable}\n`);
  if (flags.fresh && batchId) await stores.tasks.deleteBatch(batchId);
  let output: OutputFile | undefined;
  try {
    if (!toStdout) output = await openOutput(flags.output, flags.fresh === true || batchId === undefined);
  } catch (error) {
    await stores.close();
    throw error;
  }
  const out = output ? output.handle.createWriteStream({ start: output.position }) : process.stdout;
  let writeError: Error | undefined;
  out.on('error', (error) => {
    writeError = error;
  });
  const write = (text: string): Promise<void> | void => {
    if (writeError) throw new FanoutError('io_error', `output file ${flags.output}: ${writeError.message}`);
    if (!out.write(text)) return new Promise((resolve) => out.once('drain', resolve));
  };

  const engine = createEngine(
    engineOptionsFromConfig(config, {
      store: stores.tasks,
      cache: stores.cache ? { store: stores.cache, ttlMs: config.cacheTtlMs } : false,
      limiter: stores.limiter,
      // With the tasks in Redis, the queue hands this process its share of them, and no other's.
      resume: stores.redisUrl === undefined,
    }),
  );
  const shared = stores.redisUrl === undefined ? undefined : await sharedWork(stores, engine, config.concurrency);
  const controller = new AbortController();
  const storeErrors: string[] = [];
  // Without a working store nothing more can be kept safe: stop as Ctrl-C would, and say why.
  engine.on('model-unconfigured', (event) => process.stderr.write(unconfiguredNotice(event.key as string, event)));
  engine.on('store-error', (event) => {
    storeErrors.push(event.error?.message ?? 'the task store failed');
    controller.abort();
  });
  const signals = stopOnSignals(controller, notResumable);
  const reporter = progressReporter(flags.progress !== false, engine);
  let summary: BatchSummary;
  try {
    await engine.recovered;
    const stored = batchId
      ? new Map((await stores.tasks.listBatch(batchId)).map((row) => [row.line ?? 0, row]))
      : new Map();
    summary = await runBatch({
      engine,
      ownsEngine: true,
      lines: createInterface({ input: inputStream, crlfDelay: Number.POSITIVE_INFINITY }),
      write,
      parse: { modelOverride: flags.model, defaultProvider: flags.defaultProvider },
      window: flags.window === undefined ? undefined : Math.floor(flags.window),
      signal: controller.signal,
      onProgress: reporter.update,
      resume: batchId && output ? { batchId, written: output.written, stored } : undefined,
      runOn: shared?.runOn,
    });
  } finally {
    reporter.stop();
    signals.detach();
    await shared?.queue.close();
    await engine.close();
    await stores.close();
    if (output) {
      await new Promise<void>((resolve) => out.end(resolve));
      await output.handle.close().catch(() => undefined);
    } else {
      await new Promise<void>((resolve) => out.write('', () => resolve()));
    }
  }
  if (writeError) throw new FanoutError('io_error', `output file ${flags.output}: ${writeError.message}`);
  if (storeErrors.length > 0) {
    throw new FanoutError(
      'io_error',
      `task store ${stores.where}: ${storeErrors[0]} (the output holds every line finished before that)`,
    );
  }
  const stoppedBy = signals.stoppedBy();
  const report = flags.json
    ? `${JSON.stringify(summary, null, 2)}\n`
    : renderSummary(summary, { input, output: toStdout ? 'standard output' : flags.output, notResumable, stoppedBy });
  (toStdout ? process.stderr : process.stdout).write(report);
  if (summary.interrupted) return stoppedBy === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
  return summary.failed > 0 ? EXIT.someFailed : EXIT.ok;
}

/** Why a batch cannot fully resume, when it cannot: resuming reads the input again from the top and needs the tasks kept on disk. */
function whyNotResumable(input: string, toStdout: boolean, storeWhere: string): string | undefined {
  if (input === '-' || toStdout)
    return `it ${input === '-' ? 'reads standard input' : 'writes to standard output'}, so a new run sends every line again`;
  if (storeWhere === 'memory')
    return 'its tasks are kept in memory (--store memory), so a new run keeps the lines already written and sends every other line again, even those that had finished';
  return undefined;
}

/**
 * Ctrl-C and SIGTERM both stop the batch the same way (it ends with its
 * summary, what finished is kept); a second signal quits at once.
 */
function stopOnSignals(
  controller: AbortController,
  notResumable: string | undefined,
): { stoppedBy(): NodeJS.Signals | undefined; detach(): void } {
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);
    stoppedBy = signal;
    const after = notResumable
      ? `this batch cannot fully resume: ${notResumable}`
      : 'run the same command again to resume';
    process.stderr.write(
      `\nfanout: stopping: what has finished is kept; ${after} (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`,
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stoppedBy: () => stoppedBy,
    detach: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** After this long with calls in flight and none finished, progress says so. */
const STALL_WARNING_MS = 30_000;

/**
 * Progress on stderr: on a terminal, a bar with the total read so far, the
 * rate and the time left; elsewhere, the same figures in a line every 2 s.
 * Both name the call in flight longest and warn when nothing has finished
 * for 30 s, so a provider that never answers does not look like progress.
 */
function progressReporter(
  enabled: boolean,
  engine: FanoutEngine,
): { update: (p: BatchProgress) => void; stop: () => void } {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const clock = engine.clock;
  const start = clock.now();
  let latest: BatchProgress = { read: 0, completed: 0, failed: 0, inFlight: 0, waiting: 0 };
  let lastDone = 0;
  let lastDoneAt = start;
  const figures = () => {
    const now = clock.now();
    const done = latest.completed + latest.failed;
    if (done !== lastDone) {
      lastDone = done;
      lastDoneAt = now;
    }
    const rate = done / Math.max(0.001, (now - start) / 1000);
    const left = latest.read - done;
    const eta = rate > 0 ? formatMs((left / rate) * 1000) : '-';
    const oldestAt = engine.oldestCallStartedAt();
    const oldest = oldestAt === undefined ? '' : ` · oldest call ${formatMs(now - oldestAt)}`;
    const stalled =
      latest.inFlight > 0 && now - lastDoneAt >= STALL_WARNING_MS
        ? ` · nothing finished for ${formatMs(now - lastDoneAt)}`
        : '';
    return { now, done, rate: `${formatCount(rate)}/s`, eta, extra: `${oldest}${stalled}` };
  };
  if (process.stderr.isTTY) {
    const bar = new SingleBar({
      stream: process.stderr,
      format:
        'fanout {bar} {value}/{total} done ({failed} failed) · {rate} · {eta_text} left · {inFlight} in flight · {waiting} waiting{extra}',
      hideCursor: true,
      fps: 10,
    });
    bar.start(0, 0, { failed: 0, inFlight: 0, waiting: 0, rate: '0/s', eta_text: '-', extra: '' });
    const draw = (): void => {
      const f = figures();
      bar.setTotal(latest.read);
      bar.update(f.done, {
        failed: latest.failed,
        inFlight: latest.inFlight,
        waiting: latest.waiting,
        rate: f.rate,
        eta_text: f.eta,
        extra: f.extra,
      });
    };
    const stopTicking = every(clock, 1000, draw);
    return {
      update: (p) => {
        latest = p;
        draw();
      },
      stop: () => {
        stopTicking();
        bar.stop();
      },
    };
  }
  const stopTicking = every(clock, 2000, () => {
    const f = figures();
    process.stderr.write(
      `fanout: ${formatCount(f.done)}/${formatCount(latest.read)} done (${formatCount(latest.failed)} failed), ${f.rate}, ${f.eta} left, ${latest.inFlight} in flight, ${latest.waiting} waiting, ${formatMs(f.now - start)}${f.extra.replaceAll(' · ', ', ')}\n`,
    );
  });
  return {
    update: (p) => {
      latest = p;
    },
    stop: stopTicking,
  };
}

/** Calls `tick` every `ms` on the clock until the returned function is called. */
function every(clock: FanoutEngine['clock'], ms: number, tick: () => void): () => void {
  let cancel: () => void = () => undefined;
  let stopped = false;
  const arm = (): void => {
    cancel = clock.setTimer(ms, () => {
      if (stopped) return;
      tick();
      arm();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}

/**
 * The lower bound and utilisation, where they mean something: not for a run
 * that sent nothing (every line was answered before), and not as a share of
 * "what the limits allow" when no limit bound the run (the longest call did).
 */
function boundLines(s: BatchSummary): string[] {
  if (s.attempts === 0) return ['  lower bound  - (this run sent no call)', '  utilisation  -'];
  if (s.lowerBound.bindingOn === 'longest call') {
    return [
      `  lower bound  ${formatMs(s.lowerBound.ms)} (the longest call: no limit bound this run)`,
      '  utilisation  - (no limit bound this run)',
    ];
  }
  return [
    `  lower bound  ${formatMs(s.lowerBound.ms)} (set by ${s.lowerBound.bindingOn})`,
    `  utilisation  ${formatPercent(s.utilisation)} of what these limits allow`,
  ];
}

export function renderSummary(
  s: BatchSummary,
  where: { input: string; output: string; notResumable?: string; stoppedBy?: NodeJS.Signals },
): string {
  const { input, output } = where;
  const errors = Object.entries(s.errorsByCode)
    .map(([code, n]) => `${code} ${formatCount(n)}`)
    .join(', ');
  const lines = [
    `fanout batch: ${formatCount(s.lines)} lines from ${input} → ${output}${s.interrupted ? ' (interrupted)' : ''}`,
    `  completed    ${formatCount(s.completed)}${s.cacheHits > 0 ? ` (${formatCount(s.cacheHits)} answered from the cache, no call made)` : ''}`,
    `  failed       ${formatCount(s.failed)}${errors ? ` (${errors})` : ''}`,
    `  tokens       input ${formatCount(s.usage.inputTokens)} · output ${formatCount(s.usage.outputTokens)} · cache read ${formatCount(s.usage.cacheReadTokens)} · cache write ${formatCount(s.usage.cacheWriteTokens)}`,
    `  attempts     ${formatCount(s.attempts)} (${formatCount(s.retries)} retries, ${formatCount(s.http429)} answered 429)`,
    `  wall time    ${formatMs(s.wallMs)}`,
    `  latency      p50 ${formatMs(s.latencyMs.p50)} · p90 ${formatMs(s.latencyMs.p90)} · p99 ${formatMs(s.latencyMs.p99)}`,
    ...boundLines(s),
  ];
  if (s.resumed.written + s.resumed.stored + s.resumed.running > 0) {
    const answered = s.resumed.written + s.resumed.stored;
    const parts = [
      `${formatCount(answered)} lines answered by an earlier run (${formatCount(s.resumed.written)} already written, ${formatCount(s.resumed.stored)} written now from its store)`,
    ];
    if (s.resumed.running > 0) parts.push(`${formatCount(s.resumed.running)} it left unfinished, taken up again`);
    lines.splice(1, 0, `  resumed      ${parts.join('; ')}`);
  }
  if (s.interrupted) {
    const ended = s.completed + s.failed;
    if (s.written < ended) {
      lines.splice(
        lines.findIndex((line) => line.startsWith('  failed')) + 1,
        0,
        `  written      ${formatCount(s.written)} lines to ${output}; ${formatCount(ended - s.written)} more ended after a line still running, kept in the store for the next run`,
      );
    }
    lines.push(
      `  stopped by ${where.stoppedBy === 'SIGTERM' ? 'SIGTERM' : 'Ctrl-C'}: what finished is kept; ${where.notResumable ? `this batch cannot fully resume: ${where.notResumable}` : 'run the same command again to resume'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
