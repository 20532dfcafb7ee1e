import { describe, expect, it } from 'vitest';
import { cacheStoreContract } from '../../testing/contracts/cache-store-contract.js';
import { MemoryCacheStore } from './memory-cache-store.js';

cacheStoreContract('memory', () => new MemoryCacheStore());

describe('MemoryCacheStore', () => {
  it('drops the least recently used entry beyond maxEntries', () => {
    const store = new MemoryCacheStore({ maxEntries: 2 });
    const entry = {
      tenant: 't',
      storedAt: 0,
      expiresAt: 1e9,
      result: {
        text: 'x',
        usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
        finishReason: 'stop' as const,
        model: 'm',
      },
    };
    store.set('a', entry);
    store.set('b', entry);
    store.get('a', 1);
    store.set('c', entry);
    expect([store.get('a', 1), store.get('b', 1), store.get('c', 1)].map(Boolean)).toEqual([true, false, true]);
  });
});
