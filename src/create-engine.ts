import { Engine, providerList, type EngineOptions } from './core/engine.js';
import { MockProvider } from './providers/mock/mock-provider.js';

/**
 * Makes an engine. The local model `mock:` is always available: unless the
 * options bring a provider named `mock`, a default `MockProvider` is added.
 */
export function createEngine(options: EngineOptions = {}): Engine {
  const providers = providerList(options.providers);
  const hasMock = providers.some((provider) => provider.name === 'mock');
  return new Engine({ ...options, providers: hasMock ? providers : [new MockProvider(), ...providers] });
}
