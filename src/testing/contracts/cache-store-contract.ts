import { afterEach, describe, expect, it } from 'vitest';
import type { CacheEntry, CacheStore } from '../../contracts/cache-store.js';

/** The behaviour every CacheStore must show; run against each implementation. */
export function cacheStoreContract(name: string, makeStore: () => CacheStore): void {
  describe(`CacheStore contract: ${name}`, () => {
    const opened: CacheStore[] = [];
    const open = (): CacheStore => {
      const store = makeStore();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    const entry = (tenant: string, text: string, storedAt = 1000, expiresAt = 61_000): CacheEntry => ({
      tenant,
      storedAt,
      expiresAt,
      result: {
        text,
        usage: { inputTokens: 12, outputTokens: 34, cacheReadTokens: 5, cacheWriteTokens: 6 },
        finishReason: 'stop',
        model: 'm',
        requestId: 'req-1',
      },
    });

    it('returns nothing for a key never set', async () => {
      expect(await open().get('nope', 0)).toBeUndefined();
    });

    it('returns what was set, whole', async () => {
      const store = open();
      await store.set('k', entry('acme', 'hello'));
      expect(await store.get('k', 2000)).toEqual(entry('acme', 'hello'));
    });

    it('never returns an entry at or past its expiry', async () => {
      const store = open();
      await store.set('k', entry('acme', 'hello', 1000, 5000));
      expect(await store.get('k', 4999)).toBeDefined();
      expect(await store.get('k', 5000)).toBeUndefined();
    });

    it('replaces an entry set again under the same key', async () => {
      const store = open();
      await store.set('k', entry('acme', 'old'));
      await store.set('k', entry('acme', 'new', 2000, 90_000));
      expect(await store.get('k', 3000)).toEqual(entry('acme', 'new', 2000, 90_000));
    });

    it('deletes one key', async () => {
      const store = open();
      await store.set('a', entry('acme', 'a'));
      await store.set('b', entry('acme', 'b'));
      await store.delete('a');
      expect(await store.get('a', 2000)).toBeUndefined();
      expect(await store.get('b', 2000)).toBeDefined();
    });

    it('clears one tenant and only that tenant', async () => {
      const store = open();
      await store.set('a1', entry('acme', 'a1'));
      await store.set('a2', entry('acme', 'a2'));
      await store.set('g1', entry('globex', 'g1'));
      expect(await store.clearTenant('acme')).toBe(2);
      expect(await store.get('a1', 2000)).toBeUndefined();
      expect(await store.get('g1', 2000)).toBeDefined();
    });

    it('can be closed twice', async () => {
      const store = makeStore();
      await store.close();
      await store.close();
    });
  });
}
