import { describe, expect, it } from 'vitest';
import { openAiRateLimits, parseDuration, retryAfterMs, waitFromMessage } from './rate-limit-headers.js';

const headers = (entries: Record<string, string>) => new Headers(entries);

describe('rate-limit headers', () => {
  it('parses Go-style durations, ms before m', () => {
    expect(['6m0s', '1s', '84ms', '2m59.56s', '1h2m', '12ms', '0s', '7.66s'].map(parseDuration)).toEqual([
      360_000, 1000, 84, 179_560, 3_720_000, 12, 0, 7660,
    ]);
    expect(['', '5', 'soon', '1x', '1s garbage'].map(parseDuration)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('reads OpenAI’s headers as per-minute request and token buckets', () => {
    const info = openAiRateLimits(
      headers({
        'x-ratelimit-limit-requests': '60',
        'x-ratelimit-remaining-requests': '59',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-limit-tokens': '150000',
        'x-ratelimit-remaining-tokens': '149984',
        'x-ratelimit-reset-tokens': '6m0s',
      }),
      0,
    );
    expect(info).toEqual({
      requestsLimit: 60,
      requestsRemaining: 59,
      requestsResetMs: 1000,
      tokensLimit: 150_000,
      tokensRemaining: 149_984,
      tokensResetMs: 360_000,
    });
  });

  it('reads Groq’s request headers as per day, never per minute', () => {
    const info = openAiRateLimits(
      headers({
        'x-ratelimit-limit-requests': '14400',
        'x-ratelimit-remaining-requests': '14370',
        'x-ratelimit-reset-requests': '2m59.56s',
        'x-ratelimit-limit-tokens': '18000',
        'x-ratelimit-remaining-tokens': '17997',
        'x-ratelimit-reset-tokens': '7.66s',
        'retry-after': '2',
      }),
      0,
      'groq',
    );
    expect(info).toEqual({
      requestsPerDayLimit: 14_400,
      requestsPerDayRemaining: 14_370,
      requestsPerDayResetMs: 179_560,
      tokensLimit: 18_000,
      tokensRemaining: 17_997,
      tokensResetMs: 7660,
      retryAfterMs: 2000,
    });
  });

  it('ignores values that cannot be true (Azure has sent -1)', () => {
    expect(
      openAiRateLimits(headers({ 'x-ratelimit-remaining-tokens': '-1', 'x-ratelimit-limit-tokens': 'lots' }), 0),
    ).toEqual({});
  });

  it('takes retry-after-ms first, then retry-after in seconds or as a date', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '1146.2', 'retry-after': '9' }), 0)).toBe(1147);
    expect(retryAfterMs(headers({ 'retry-after': '2' }), 0)).toBe(2000);
    expect(
      retryAfterMs(
        headers({ 'retry-after': 'Fri, 27 Nov 2026 10:00:30 GMT' }),
        Date.parse('Fri, 27 Nov 2026 10:00:00 GMT'),
      ),
    ).toBe(30_000);
    expect(retryAfterMs(headers({}), 0)).toBeUndefined();
  });

  it('finds the wait in an OpenAI 429 message', () => {
    expect(
      waitFromMessage(
        'Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 1.146s.',
      ),
    ).toBe(1146);
    expect(waitFromMessage('Please try again in 84ms.')).toBe(84);
    expect(waitFromMessage('Please try again in 6m0s.')).toBe(360_000);
    expect(waitFromMessage('no wait here')).toBeUndefined();
  });
});
