import { providerList, type EngineOptions } from '../core/engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { providersFromConfig } from './providers.js';
import type { FanoutConfig } from './schema.js';

/** The engine options a config describes; `extra` (clock, random, providers) is merged over them. */
export function engineOptionsFromConfig(
  config: FanoutConfig,
  extra: EngineOptions = {},
): EngineOptions & { mock: MockProvider } {
  const mock = new MockProvider({
    seed: config.providers?.mock?.seed,
    callLog: config.providers?.mock?.callLog,
    defaults: config.providers?.mock?.defaults,
    models: config.providers?.mock?.models,
  });
  const given = providerList(extra.providers);
  return {
    concurrency: config.concurrency,
    defaultMaxTokens: config.defaultMaxTokens,
    retry: config.retry,
    models: config.models,
    groups: config.groups,
    callTimeouts: config.timeouts,
    ...extra,
    providers: [mock, ...providersFromConfig(config), ...given],
    mock,
  };
}

/** The mock models a config defines: under `providers.mock.models`, or as `mock:<name>` in `models`. */
export function configuredMockModels(config: FanoutConfig): string[] {
  const named = Object.keys(config.models ?? {})
    .filter((model) => model.startsWith('mock:') && model !== 'mock:*')
    .map((model) => model.slice('mock:'.length));
  return [...new Set([...Object.keys(config.providers?.mock?.models ?? {}), ...named])];
}
