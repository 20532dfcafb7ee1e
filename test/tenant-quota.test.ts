import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { TenantQuota } from '../src/server/tenant-quota.js';
import { ManualClock } from '../src/testing/manual-clock.js';

describe('tenant quota', () => {
  it('admits a tenant’s requests at its rate, exactly, and says how long to wait', async () => {
    const clock = new ManualClock();
    const quota = new TenantQuota(clock, { limits: { requestsPerMinute: 60, burstSeconds: 2 } });
    expect(await quota.admit('a')).toEqual({ allowed: true });
    expect(await quota.admit('a')).toEqual({ allowed: true });
    expect(await quota.admit('a')).toEqual({ allowed: false, retryAfterMs: 1000, limit: 60, remaining: 0, resetMs: 2000 });
    expect(await quota.admit('b')).toEqual({ allowed: true });
    await clock.advance(1000);
    expect(await quota.admit('a')).toEqual({ allowed: true });
  });

  it('waits for a permit when told it may, up to maxWaitMs', async () => {
    const clock = new ManualClock();
    const quota = new TenantQuota(clock, { limits: { requestsPerMinute: 60, burstSeconds: 1 }, maxWaitMs: 1000 });
    await quota.admit('a');
    let admitted = false;
    void quota.admit('a').then(() => (admitted = true));
    await clock.advance(999);
    expect(admitted).toBe(false);
    await clock.advance(1);
    expect(admitted).toBe(true);
  });
});

describe('the gateway over a tenant’s quota', () => {
  let engine: FanoutEngine;
  let app: ReturnType<typeof createFanoutServer>;
  let baseURL: string;
  beforeAll(async () => {
    engine = createEngine({ cache: false });
    app = createFanoutServer({ engine, keys: new ApiKeys([{ tenant: 'small', key: 'k-small' }]), tenantQuota: { limits: { requestsPerMinute: 2, burstSeconds: 60 } } });
    baseURL = `${await app.listen({ port: 0, host: '127.0.0.1' })}/v1`;
  });
  afterAll(async () => {
    await app.close();
    await engine.close();
  });

  it('answers 429 with retry-after and OpenAI rate-limit headers, which the openai SDK reads', async () => {
    const client = new OpenAI({ apiKey: 'k-small', baseURL, maxRetries: 0 });
    const ask = () => client.chat.completions.create({ model: 'mock:m', messages: [{ role: 'user', content: 'hi' }] });
    await ask();
    await ask();
    const refused = (await ask().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(Number(refused.headers.get('retry-after-ms'))).toBeGreaterThan(29_000);
  });
});
