import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { createEngine } from '../../create-engine.js';
import { MockProvider } from '../../providers/mock/mock-provider.js';
import { cacheStoreContract } from '../../testing/contracts/index.js';
import { RedisCacheStore } from './redis-cache-store.js';

// Each store its own prefix on the one test server, so that tests never see each other's entries.
cacheStoreContract('redis', () => new RedisCacheStore({ url: inject('redisUrl'), prefix: `test-${randomUUID()}:` }));

describe('the Redis cache, shared between engines', () => {
  it('answers one engine’s request from another engine’s call, never another tenant’s', async () => {
    const prefix = `test-${randomUUID()}:`;
    const url = inject('redisUrl');
    const mockA = new MockProvider();
    const mockB = new MockProvider();
    const a = createEngine({ providers: [mockA], cache: { store: new RedisCacheStore({ url, prefix }) } });
    const b = createEngine({ providers: [mockB], cache: { store: new RedisCacheStore({ url, prefix }) } });
    try {
      const ask = { model: 'mock:reviewer', messages: [{ role: 'user' as const, content: 'hi' }], temperature: 0 };
      const first = await a.submit({ ...ask, tenant: 'acme' }).result();
      const shared = await b.submit({ ...ask, tenant: 'acme' }).result();
      expect(shared.cache?.source).toBe('stored');
      expect(shared.text).toBe(first.text);
      expect(mockB.stats().calls).toBe(0);
      const other = await b.submit({ ...ask, tenant: 'globex' }).result();
      expect(other.cache).toBeUndefined();
      expect(mockB.stats().calls).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
