import type { CacheStore } from './contracts/cache-store.js';
import type { Limiter } from './contracts/limiter.js';
import type { TaskStore } from './contracts/task-store.js';
import { Engine, providerList, type EngineOptions } from './core/engine.js';
import { runPipeline, type PipelineRun, type RunPipelineOptions } from './pipeline/run.js';
import { checkPipeline, type Pipeline, type PipelineSpec } from './pipeline/spec.js';
import { MockProvider } from './providers/mock/mock-provider.js';
import { MemoryCacheStore } from './store/memory/memory-cache-store.js';

/**
 * What every process on one Redis shares: its limits, its tasks and its
 * cached answers (`redisParts` from `fanout/redis` makes them).
 */
export interface SharedParts {
  limiter: Limiter;
  store: TaskStore;
  cache: CacheStore;
  close(): Promise<void>;
}

export interface FanoutEngineOptions extends EngineOptions {
  /**
   * Limits, tasks and cached answers shared with every process on one Redis
   * (`redisParts({ url })`), for whichever of `limiter`, `store` and
   * `cache.store` are not given; closed with the engine. `resume` then
   * defaults to false: the Redis holds other live processes' tasks too.
   */
  redis?: SharedParts;
}

/** The engine with pipelines: `run` executes a pipeline's steps as tasks of this engine, under its limits. */
export class FanoutEngine extends Engine {
  private readonly sharedParts: SharedParts | undefined;

  constructor(options: FanoutEngineOptions) {
    super(options);
    this.sharedParts = options.redis;
  }

  /** Closes the engine, then the shared parts it was given (`redis`). */
  override async close(): Promise<void> {
    await super.close();
    await this.sharedParts?.close();
  }

  /**
   * Runs a pipeline (a checked `Pipeline`, or a spec object that is checked
   * first) with the given inputs.
   */
  run(
    pipeline: Pipeline | PipelineSpec,
    inputs: Readonly<Record<string, string>> = {},
    options: Omit<RunPipelineOptions, 'inputs'> = {},
  ): Promise<PipelineRun> {
    const checked = 'order' in pipeline ? pipeline : checkPipeline(pipeline);
    return runPipeline(this, checked, { ...options, inputs });
  }
}

/**
 * Makes an engine. The local model `mock:` is always available: unless the
 * options bring a provider named `mock`, a default `MockProvider` is added.
 * Unless the cache is off or given a store, answers are kept in memory.
 */
export function createEngine(options: FanoutEngineOptions = {}): FanoutEngine {
  const providers = providerList(options.providers);
  const hasMock = providers.some((provider) => provider.name === 'mock');
  const { redis } = options;
  const cache =
    options.cache === false
      ? false
      : { ...options.cache, store: options.cache?.store ?? redis?.cache ?? new MemoryCacheStore() };
  return new FanoutEngine({
    ...options,
    ...(redis
      ? {
          limiter: options.limiter ?? redis.limiter,
          store: options.store ?? redis.store,
          resume: options.resume ?? false,
        }
      : {}),
    cache,
    providers: hasMock ? providers : [new MockProvider(), ...providers],
  });
}
