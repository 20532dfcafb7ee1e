import { describe, expect, it } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { engineOptionsFromConfig } from '../src/config/engine-options.js';
import { fromData } from '../src/cli/config-file.js';
import { createEngine } from '../src/create-engine.js';
import { ApiKeys } from '../src/server/api-keys.js';
import { createFanoutServer } from '../src/server/server.js';

const config = fromData(
  {
    providers: { mock: { models: { reviewer: { latency: 5, outputTokens: { min: 3, max: 9 } } } } },
    retry: { maxAttempts: 1 },
  },
  'test',
  {},
);

/** Every kind of line: both input forms, custom ids, a bad line, a request the model refuses, a blank line. */
const LINES = [
  JSON.stringify({ id: 'short', model: 'mock:reviewer', prompt: 'Review the cache', max_tokens: 50 }),
  JSON.stringify({
    custom_id: 'openai-form',
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'mock:reviewer',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Review the retries' },
      ],
      max_tokens: 40,
      temperature: 0,
    },
  }),
  '{not json',
  JSON.stringify({ id: 'unknown-provider', model: 'nobody:model', prompt: 'x' }),
  '',
  JSON.stringify({ id: 'no-prompt', model: 'mock:reviewer' }),
  JSON.stringify({
    custom_id: 'wrong-url',
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: 'mock:reviewer', input: 'x' },
  }),
];

/** What differs between two runs of the same line: the task id and the times. */
function comparable(text: string): unknown {
  const line = JSON.parse(text) as Record<string, any>;
  if (line.id !== null) line.id = 't_…';
  if (line.fanout?.timing) line.fanout.timing = '…';
  if (line.response?.request_id) line.response.request_id = '…';
  if (line.response?.body?.id) line.response.body.id = '…';
  if (line.response?.body?.created) line.response.body.created = '…';
  return line;
}

describe('one batch, two ways in', () => {
  it('gives the same output lines from fanout batch and from POST /v1/batches', async () => {
    const cliEngine = createEngine(engineOptionsFromConfig(config));
    const written: string[] = [];
    async function* lines(): AsyncIterable<string> {
      yield* LINES;
    }
    await runBatch({ engine: cliEngine, lines: lines(), write: (text) => void written.push(text) });
    await cliEngine.close();
    const fromCli = written.join('').trim().split('\n');

    const serverEngine = createEngine(engineOptionsFromConfig(config));
    const app = createFanoutServer({ engine: serverEngine, keys: new ApiKeys([{ tenant: 'acme', key: 'fk-acme' }]) });
    const headers = { authorization: 'Bearer fk-acme', 'content-type': 'application/x-ndjson' };
    const created = await app.inject({ method: 'POST', url: '/v1/batches', headers, payload: LINES.join('\n') });
    expect(created.statusCode).toBe(202);
    const results = await app.inject({ method: 'GET', url: `/v1/batches/${created.json().id}/results`, headers });
    await app.close();
    await serverEngine.close();
    const fromServer = results.body.trim().split('\n');

    expect(fromCli).toHaveLength(6);
    expect(fromServer.map(comparable)).toEqual(fromCli.map(comparable));
    // Both kinds of answer are there: four errors naming their line, two completions.
    expect(fromCli.map((text) => JSON.parse(text).error?.message?.slice(0, 7) ?? 'ok')).toEqual([
      'ok',
      'ok',
      'line 3:',
      'line 4:',
      'line 6:',
      'line 7:',
    ]);
  });
});
