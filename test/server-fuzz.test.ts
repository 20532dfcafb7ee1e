import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { seededRandom } from '../src/contracts/random.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

let engine: FanoutEngine;
let app: ReturnType<typeof createFanoutServer>;
beforeAll(() => {
  engine = createEngine({ cache: false });
  app = createFanoutServer({ engine, keys: new ApiKeys([{ tenant: 't', key: 'k' }]), bodyLimitBytes: 16 * 1024 });
});
afterAll(async () => {
  await app.close();
  await engine.close();
});

const random = seededRandom(20000);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random.next() * items.length)] as T;
const int = (max: number): number => Math.floor(random.next() * max);

const values: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  '',
  'x',
  'mock:m',
  'nope:m',
  [],
  {},
  [1],
  { role: 'user' },
  'ü'.repeat(50),
  '\u0000',
];
const fields = [
  'model',
  'messages',
  'maxTokens',
  'max_tokens',
  'temperature',
  'prompt',
  'stream',
  'priority',
  'system',
  'cache',
  'tenant',
  'custom_id',
  'body',
  '__proto__',
  'constructor',
];

function randomObject(depth = 0): unknown {
  const object: Record<string, unknown> = {};
  for (let i = int(5); i > 0; i--)
    object[pick(fields)] = depth < 2 && random.next() < 0.3 ? randomObject(depth + 1) : pick(values);
  if (random.next() < 0.3)
    object.messages = [{ role: pick(['user', 'assistant', 'system', 'tool', 7]), content: pick(values) }];
  return object;
}

function randomBody(): { payload: string | Buffer; type: string } {
  switch (int(8)) {
    case 0:
      return { payload: JSON.stringify(randomObject()).slice(0, int(200)), type: 'application/json' }; // cut short
    case 1:
      return {
        payload: Buffer.from(Array.from({ length: int(300) }, () => int(256))),
        type: pick(['application/json', 'application/x-ndjson', 'text/plain', 'application/octet-stream']),
      };
    case 2:
      return {
        payload: Buffer.from([0x7b, 0x22, 0x6d, 0xc3, 0x28, 0xa0, 0xa1, 0x22, 0x3a, 0xff, 0xfe, 0x7d]),
        type: 'application/json',
      }; // broken UTF-8
    case 3:
      return { payload: 'x'.repeat(16 * 1024 + int(100_000)), type: 'application/json' }; // over the body limit
    case 4:
      return {
        payload: JSON.stringify(Array.from({ length: int(5) }, () => randomObject())),
        type: pick(['application/json', 'application/x-ndjson']),
      };
    case 5:
      return {
        payload: Array.from({ length: int(6) }, () =>
          random.next() < 0.5 ? JSON.stringify(randomObject()) : '{oops',
        ).join('\n'),
        type: 'application/x-ndjson',
      };
    case 6:
      return { payload: JSON.stringify(pick(values)), type: 'application/json' };
    default:
      return {
        payload: JSON.stringify(randomObject()),
        type: pick(['application/json', 'application/json; charset=latin1', 'text/html', '']),
      };
  }
}

describe('fuzzing the server', () => {
  it('answers 20,000 malformed requests without a single 5xx, and still answers afterwards', async () => {
    const statuses = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      const { payload, type } = randomBody();
      const method = pick(['POST', 'POST', 'POST', 'GET', 'DELETE', 'PUT', 'PATCH'] as const);
      const url = pick([
        '/v1/tasks',
        '/v1/tasks?wait=0',
        '/v1/chat/completions',
        '/v1/batches',
        `/v1/tasks/${encodeURIComponent(String(pick(values)))}`,
        '/v1/batches/x/results',
        '/v1/models',
        '/v1/%E0%A4%A',
        '/v1/tasks/../../etc',
      ]);
      const headers: Record<string, string> = {
        authorization: pick(['Bearer k', 'Bearer k', 'Bearer wrong', 'Basic k', '', 'Bearer']),
      };
      if (type) headers['content-type'] = type;
      if (random.next() < 0.05) headers['content-length'] = String(int(10));
      const response = await app.inject({
        method,
        url,
        headers,
        payload: method === 'GET' || method === 'DELETE' ? undefined : payload,
      });
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      if (response.statusCode >= 500)
        throw new Error(`${method} ${url} (${type}) → ${response.statusCode}: ${response.body.slice(0, 200)}`);
    }
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/tasks?wait=1',
      headers: { authorization: 'Bearer k' },
      payload: { model: 'mock:m', messages: [{ role: 'user', content: 'still here' }] },
    });
    expect(ok.json()).toMatchObject({ state: 'completed' });
  });
});
