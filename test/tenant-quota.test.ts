import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';
import { TenantQuota } from '../src/server/tenant-quota.js';
import { ManualClock } from '../src/contracts/manual-clock.js';

describe('tenant quota', () => {
  it('admits a tenant’s requests at its rate, exactly, and says how long to wait', async () => {
    const clock = new ManualClock();
    const quota = new TenantQuota(clock, { limits: { requestsPerMinute: 60, burstSeconds: 2 } });
    expect(await quota.admit('a')).toMatchObject({ allowed: true });
    expect(await quota.admit('a')).toMatchObject({ allowed: true });
    expect(await quota.admit('a')).toEqual({
      allowed: false,
      retryAfterMs: 1000,
      dimension: 'requests',
      limit: 60,
      remaining: 0,
      resetMs: 2000,
    });
    expect(await quota.admit('b')).toMatchObject({ allowed: true });
    await clock.advance(1000);
    expect(await quota.admit('a')).toMatchObject({ allowed: true });
  });

  it('reserves a request’s estimated tokens and charges what it really used', async () => {
    const clock = new ManualClock();
    // 600 tokens a minute, 10 seconds' worth at once: 100 tokens, 10 back each second.
    const quota = new TenantQuota(clock, { limits: { tokensPerMinute: 600, burstSeconds: 10 } });
    const first = await quota.admit('a', { inputTokens: 60, outputTokens: 0 });
    if (!first.allowed) throw new Error('the first request fits');
    first.settle({ inputTokens: 60, outputTokens: 30, cacheReadTokens: 0, cacheWriteTokens: 0 });
    // 100 − 90 = 10 left; 60 more need 5 seconds of refill.
    expect(await quota.admit('a', { inputTokens: 60, outputTokens: 0 })).toEqual({
      allowed: false,
      retryAfterMs: 5000,
      dimension: 'tokens',
      limit: 600,
      remaining: 10,
      resetMs: 9000,
    });
    await clock.advance(5000);
    expect(await quota.admit('a', { inputTokens: 60, outputTokens: 0 })).toMatchObject({ allowed: true });
    await expect(quota.admit('a', { inputTokens: 500, outputTokens: 200 })).rejects.toMatchObject({
      code: 'request_too_large',
    });
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
    app = createFanoutServer({
      engine,
      keys: new ApiKeys([{ tenant: 'small', key: 'k-small' }]),
      tenantQuota: { limits: { requestsPerMinute: 2, burstSeconds: 60 } },
    });
    baseURL = `${await app.listen({ port: 0, host: '127.0.0.1' })}/v1`;
  });
  afterAll(async () => {
    await app.close();
    await engine.close();
  });

  it('answers 429 with token headers once a tenant has used its tokens', async () => {
    const tokenApp = createFanoutServer({
      engine,
      keys: new ApiKeys([{ tenant: 'thrifty', key: 'k-thrifty' }]),
      tenantQuota: { limits: { tokensPerMinute: 100, burstSeconds: 60 } },
    });
    const url = `${await tokenApp.listen({ port: 0, host: '127.0.0.1' })}/v1`;
    const client = new OpenAI({ apiKey: 'k-thrifty', baseURL: url, maxRetries: 0 });
    let used = 0;
    let refused: InstanceType<typeof OpenAI.RateLimitError> | undefined;
    for (let i = 0; i < 20 && !refused; i++) {
      const answer = await client.chat.completions
        .create({ model: 'mock:m', messages: [{ role: 'user', content: `question ${i}` }] })
        .catch((e: unknown) => e);
      if (answer instanceof OpenAI.RateLimitError) refused = answer;
      else used += (answer as OpenAI.ChatCompletion).usage?.total_tokens ?? 0;
    }
    await tokenApp.close();
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    // Refused only once the real usage so far left too little for the next request.
    expect(used).toBeGreaterThan(90);
    expect(refused?.headers.get('x-ratelimit-limit-tokens')).toBe('100');
    // What is left is at least what real usage left (refill only adds), and less than a short prompt needs.
    const remaining = Number(refused?.headers.get('x-ratelimit-remaining-tokens'));
    expect(remaining).toBeGreaterThanOrEqual(Math.max(0, 100 - used));
    expect(remaining).toBeLessThan(10);
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

describe('a tenant’s quota on every way of submitting', () => {
  it('paces tasks, batches and runs from the same buckets the gateway answers 429 from', async () => {
    const clock = new ManualClock();
    const limits = { requestsPerMinute: 5, burstSeconds: 60 };
    const engine = createEngine({ clock, cache: false, tenants: { limits } });
    const app = createFanoutServer({
      engine,
      keys: new ApiKeys([
        { tenant: 'small', key: 'k-small' },
        { tenant: 'other', key: 'k-other' },
      ]),
      tenantQuota: { limits },
    });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const ask = { model: 'mock:m', messages: [{ role: 'user', content: 'hi' }] };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await app.inject({ method: 'POST', url: '/v1/tasks', headers: as('k-small'), payload: ask })).json().id,
      );
    const batch = (
      await app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { ...as('k-small'), 'content-type': 'application/x-ndjson' },
        payload: Array.from({ length: 4 }, (_, i) => JSON.stringify({ model: 'mock:m', prompt: `line ${i}` })).join(
          '\n',
        ),
      })
    ).json();
    const run = (
      await app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: as('k-small'),
        payload: { pipeline: { steps: { a: { model: 'mock:m', prompt: 'step' } } } },
      })
    ).json();
    await clock.advance(0);
    // 5 a minute, all at once: 3 tasks and 2 batch lines ran; the rest wait their turn, 12 s apart.
    const states = await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}`, headers: as('k-small') });
    expect(states.json().counts).toEqual({ completed: 2, queued: 1, rate_limited: 1 });
    expect((await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: as('k-small') })).json().state).toBe(
      'running',
    );
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: as('k-small'),
      payload: ask,
    });
    expect(refused.statusCode).toBe(429);
    // Another tenant is not held back by it.
    const other = await app.inject({ method: 'POST', url: '/v1/tasks?wait=1', headers: as('k-other'), payload: ask });
    expect(other.json().state).toBe('completed');
    await clock.advance(12_000);
    expect(
      (await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}`, headers: as('k-small') })).json().counts,
    ).toEqual({ completed: 3, rate_limited: 1 });
    await clock.advance(24_000);
    expect((await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: as('k-small') })).json().state).toBe(
      'completed',
    );
    await app.close();
    await engine.close();
  });
});
