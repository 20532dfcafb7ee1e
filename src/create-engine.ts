import { Engine, providerList, type EngineOptions } from './core/engine.js';
import { runPipeline, type PipelineRun, type RunPipelineOptions } from './pipeline/run.js';
import { checkPipeline, type Pipeline, type PipelineSpec } from './pipeline/spec.js';
import { MockProvider } from './providers/mock/mock-provider.js';
import { MemoryCacheStore } from './store/memory/memory-cache-store.js';

/** The engine with pipelines: `run` executes a pipeline's steps as tasks of this engine, under its limits. */
export class FanoutEngine extends Engine {
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
export function createEngine(options: EngineOptions = {}): FanoutEngine {
  const providers = providerList(options.providers);
  const hasMock = providers.some((provider) => provider.name === 'mock');
  const cache =
    options.cache === false ? false : { ...options.cache, store: options.cache?.store ?? new MemoryCacheStore() };
  return new FanoutEngine({ ...options, cache, providers: hasMock ? providers : [new MockProvider(), ...providers] });
}
