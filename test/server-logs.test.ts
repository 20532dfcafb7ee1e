import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type FanoutEngine } from '../src/create-engine.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

const CANARY = 'CANARY-7f3a9c1e-do-not-log';
let lines = '';
let engine: FanoutEngine;
let app: ReturnType<typeof createFanoutServer>;
let baseURL: string;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines += chunk.toString();
      done();
    },
  });
  engine = createEngine({ cache: false });
  app = createFanoutServer({
    engine,
    keys: new ApiKeys([{ tenant: 'acme', key: `key-${CANARY}` }]),
    logger: pino({ level: 'trace' }, sink),
  });
  baseURL = `${await app.listen({ port: 0, host: '127.0.0.1' })}/v1`;
});
afterAll(async () => {
  await app.close();
  await engine.close();
});

describe('server logs', () => {
  it('log every request, and never a key, a prompt, an answer, a body or a query string', async () => {
    const auth = { authorization: `Bearer key-${CANARY}`, 'content-type': 'application/json' };
    await fetch(`${baseURL}/tasks?wait=1&note=${CANARY}`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        model: 'mock:m',
        system: CANARY,
        messages: [{ role: 'user', content: `prompt ${CANARY}` }],
      }),
    });
    await fetch(`${baseURL}/tasks`, { method: 'POST', headers: auth, body: `{"broken": "${CANARY}` });
    await fetch(`${baseURL}/tasks/t_unknown?api_key=${CANARY}`, {
      headers: { authorization: `Bearer wrong-${CANARY}` },
    });
    const client = new OpenAI({ apiKey: `key-${CANARY}`, baseURL, maxRetries: 0 });
    await client.chat.completions.create({
      model: 'mock:m',
      messages: [{ role: 'user', content: `gateway ${CANARY}` }],
    });
    await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ model: 'nope:m', messages: [{ role: 'user', content: CANARY }] }),
    });
    const entries = lines
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(entries.filter((e) => e.msg === 'request completed').length).toBeGreaterThanOrEqual(5);
    expect(entries.some((e) => e.req?.path === '/v1/tasks' && e.req?.method === 'POST')).toBe(true);
    expect(lines).not.toContain(CANARY);
  });
});
