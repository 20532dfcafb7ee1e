// One fanout process of several sharing one provider's limits through Redis, for test/shared-limits.test.ts.
// Runs calls to an OpenAI-compatible upstream for a while, keeping `depth` in flight or queued,
// then prints one JSON line: { completed, failed, roundTrips }.
// argv: upstream URL, Redis URL, key prefix, 'told' | 'learned', seconds, clock skew in ms
import { createEngine, OpenAiCompatibleProvider, SystemClock } from '../../dist/index.js';
import { RedisLimiter } from '../../dist/store/redis/index.js';

const [upstreamUrl, redisUrl, prefix, mode, seconds, skewMs = '0'] = process.argv.slice(2);
const limits = { requestsPerMinute: 600, tokensPerMinute: 60_000, burstSeconds: 1 };

/** The system clock, set `skewMs` off: this process's idea of the time disagrees with the others'. */
class SkewedClock extends SystemClock {
  now() {
    return super.now() + Number(skewMs);
  }
}
const clock = new SkewedClock();
const limiter = new RedisLimiter({ url: redisUrl, prefix, clock });
const engine = createEngine({
  clock,
  limiter,
  providers: [new OpenAiCompatibleProvider({ name: 'up', apiKey: 'k', baseURL: upstreamUrl })],
  models: mode === 'told' ? { 'up:m': { limits } } : {},
  cache: false,
});

const stopAt = Date.now() + Number(seconds) * 1000;
let completed = 0;
let failed = 0;
let next = 0;
const depth = 12;

async function lane() {
  while (Date.now() < stopAt) {
    const i = next++;
    const handle = engine.submit({
      model: 'up:m',
      messages: [{ role: 'user', content: `Say something short about the number ${i}.` }],
      maxTokens: 40,
      maxAttempts: 20,
    });
    try {
      await handle.result();
      completed += 1;
    } catch {
      failed += 1;
    }
  }
}

await Promise.all(Array.from({ length: depth }, lane));
await engine.close();
const roundTrips = limiter.roundTrips();
await limiter.close();
process.stdout.write(`${JSON.stringify({ completed, failed, roundTrips })}\n`);
