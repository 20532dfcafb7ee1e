import type { CacheStore } from '../contracts/cache-store.js';
import { FanoutError } from '../contracts/errors.js';
import type { LimitSpec } from '../contracts/limiter.js';
import type { CallTimeouts, Provider } from '../contracts/provider.js';
import type { EngineOptions, TenantOptions } from './engine-options.js';
import { callTimeouts, nonNegative, positiveInteger, positiveNumber } from './option-checks.js';
import { DEFAULT_LEASE_MS } from './journal.js';
import { DEFAULT_CACHE_TTL_MS } from './result-cache.js';
import { DEFAULT_RETRY, type RetryOptions } from './retry.js';
import { DEFAULT_CALL_TIMEOUTS } from './watchdog.js';

/** An engine's options, checked, with every default filled in. */
export interface EngineSettings {
  retry: Required<RetryOptions>;
  defaultMaxTokens: number;
  maxEndedTasks: number;
  concurrency: number;
  leaseMs: number;
  providers: Map<string, Provider>;
  /** Each provider's call timeouts: its own over the engine's over the defaults. */
  timeouts: Map<string, Required<CallTimeouts>>;
  /** The result cache, unless it is off. */
  cache?: { store: CacheStore; ttlMs: number };
  tenants: { weightOf(tenant: string): number; maxInFlight: number; limits?: LimitSpec };
}

/** Checks an engine's options; throws `invalid_config` naming the first one that is wrong. */
export function engineSettings(options: EngineOptions): EngineSettings {
  const retry = options.retry;
  const checked = {
    retry: {
      maxAttempts: positiveInteger('retry.maxAttempts', retry?.maxAttempts, DEFAULT_RETRY.maxAttempts),
      baseDelayMs: nonNegative('retry.baseDelayMs', retry?.baseDelayMs, DEFAULT_RETRY.baseDelayMs),
      maxDelayMs: nonNegative('retry.maxDelayMs', retry?.maxDelayMs, DEFAULT_RETRY.maxDelayMs),
    },
    defaultMaxTokens: positiveInteger('defaultMaxTokens', options.defaultMaxTokens, 1024),
    maxEndedTasks: positiveInteger('maxEndedTasks', options.maxEndedTasks, 50_000),
    cache: cacheSettings(options.cache),
    concurrency: positiveInteger('concurrency', options.concurrency, 256),
    leaseMs: positiveInteger('leaseMs', options.leaseMs, DEFAULT_LEASE_MS),
  };
  const engineTimeouts = callTimeouts('callTimeouts', options.callTimeouts, DEFAULT_CALL_TIMEOUTS);
  const providers = new Map<string, Provider>();
  const timeouts = new Map<string, Required<CallTimeouts>>();
  for (const provider of providerList(options.providers)) {
    providers.set(provider.name, provider);
    const name = `providers.${provider.name}.timeouts`;
    timeouts.set(provider.name, callTimeouts(name, provider.timeouts, engineTimeouts));
  }
  return { ...checked, providers, timeouts, tenants: tenantSettings(options.tenants ?? {}) };
}

function tenantSettings(tenants: TenantOptions): EngineSettings['tenants'] {
  const weights = Object.entries(tenants.weights ?? {}).map(
    ([tenant, weight]) => [tenant, positiveNumber(`tenants.weights.${tenant}`, weight)] as const,
  );
  const byTenant = new Map(weights);
  return {
    weightOf: (tenant) => byTenant.get(tenant) ?? 1,
    maxInFlight: positiveInteger('tenants.maxInFlight', tenants.maxInFlight, Number.POSITIVE_INFINITY),
    limits: tenants.limits,
  };
}

function cacheSettings(cache: EngineOptions['cache']): EngineSettings['cache'] {
  if (cache === false) return undefined;
  // createEngine gives an engine its default store (in memory); an engine made directly names its own.
  if (!cache?.store)
    throw new FanoutError(
      'invalid_config',
      'cache.store: an engine made with new Engine() needs a CacheStore for its result cache, or cache: false (createEngine gives it one in memory)',
    );
  return { store: cache.store, ttlMs: positiveInteger('cache.ttlMs', cache.ttlMs, DEFAULT_CACHE_TTL_MS) };
}

/** The providers of an options object, whichever form they were given in. */
export function providerList(providers: EngineOptions['providers']): Provider[] {
  return Array.isArray(providers) ? providers : Object.values(providers ?? {});
}
