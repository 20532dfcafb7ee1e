import { providerList, type EngineOptions } from '../core/engine.js';
import { MockProvider } from '../providers/mock/mock-provider.js';
import { providersFromConfig } from './providers.js';
import type { FanoutConfig } from './schema.js';

/** The engine options a config describes; `extra` (clock, random, providers) is merged over them. */
export function engineOptionsFromConfig(config: FanoutConfig, extra: EngineOptions = {}): EngineOptions & { mock: MockProvider } {
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
    ...extra,
    providers: [mock, ...providersFromConfig(config), ...given],
    mock,
  };
}
