import { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { bin, startServe } from './processes/serve-process.js';
import { startRedisServer } from './redis-server.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');

const askAndWait = (address: string, model: string) =>
  fetch(`${address}/v1/tasks?wait=1`, {
    method: 'POST',
    headers: { authorization: 'Bearer fk-test', 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello over http' }] }),
  });

describe('fanout serve', () => {
  it('starts on the embedded store with no setup, answers, and stops cleanly on SIGTERM', async () => {
    const { child, out, address, exited } = await startServe(['--allow-mock']);
    expect(out.stderr).toContain('tasks in .fanout/fanout.db');
    const response = await askAndWait(address, 'mock:m');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ state: 'completed', tenant: 'acme' });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stderr).toContain('unfinished tasks stay in the store');
  });

  it('serves only the mock models its config defines, unless given --allow-mock, and lists them', async () => {
    const config =
      'models:\n  "mock:reviewer": { limits: { requestsPerMinute: 600 } }\nproviders:\n  mock:\n    models:\n      summarizer: { latency: 0 }\n';
    const { child, address, exited } = await startServe(['--config', 'fanout.yaml', '--store', 'memory'], {
      'fanout.yaml': config,
    });
    const invented = await askAndWait(address, 'mock:reviwer');
    expect(invented.status).toBe(400);
    expect(((await invented.json()) as { error: { message: string } }).error.message).toBe(
      'model: mock does not serve "mock:reviwer"; it serves mock:reviewer, mock:summarizer',
    );
    expect((await askAndWait(address, 'mock:reviewer')).status).toBe(200);
    expect((await askAndWait(address, 'mock:summarizer')).status).toBe(200);
    const models = (await (
      await fetch(`${address}/v1/models`, { headers: { authorization: 'Bearer fk-test' } })
    ).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m: { id: string }) => m.id).sort()).toEqual(['mock:reviewer', 'mock:summarizer']);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('after kill -9, a batch and a run answer by id and finish, and no call answered before is made again', async () => {
    const config =
      'models:\n  "mock:slow": { limits: { maxConcurrent: 5 } }\nproviders:\n  mock:\n    callLog: calls.jsonl\n    models:\n      slow: { latency: 300 }\n';
    const first = await startServe(['--config', 'fanout.yaml'], { 'fanout.yaml': config });
    const headers = { authorization: 'Bearer fk-test' };
    const lines = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ id: `q${i}`, model: 'mock:slow', prompt: `question ${i}` }),
    ).join('\n');
    const batch = (await (
      await fetch(`${first.address}/v1/batches`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-ndjson' },
        body: lines,
      })
    ).json()) as { id: string };
    const run = (await (
      await fetch(`${first.address}/v1/runs`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({
          pipeline: {
            steps: {
              a: { model: 'mock:slow', prompt: 'first' },
              b: { model: 'mock:slow', prompt: '{{ steps.a.output }}' },
            },
          },
        }),
      })
    ).json()) as { id: string };
    for (;;) {
      const counts = (
        (await (await fetch(`${first.address}/v1/batches/${batch.id}`, { headers })).json()) as {
          counts: Record<string, number>;
        }
      ).counts;
      if ((counts.completed ?? 0) >= 5) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const callsBefore = readFileSync(join(first.dir, 'calls.jsonl'), 'utf8').trim().split('\n').length;
    // The calls whose answers the store had when the process died: none of them may be made again.
    const db = new Database(join(first.dir, '.fanout/fanout.db'));
    const { stored } = db.prepare("SELECT count(*) AS stored FROM tasks WHERE state = 'completed'").get() as {
      stored: number;
    };
    db.close();

    const second = await startServe(['--config', 'fanout.yaml'], {}, first.dir);
    const results = await (await fetch(`${second.address}/v1/batches/${batch.id}/results`, { headers })).text();
    const out = results
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { custom_id: string; fanout: { state: string } });
    expect(out.map((line) => `${line.custom_id}:${line.fanout.state}`)).toEqual(
      Array.from({ length: 20 }, (_, i) => `q${i}:completed`),
    );
    let view: { state: string } = { state: 'running' };
    while (view.state === 'running') {
      view = (await (await fetch(`${second.address}/v1/runs/${run.id}`, { headers })).json()) as { state: string };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(view.state).toBe('completed');
    // 22 calls needed; made again are only those whose answers the store did not have at the kill: the
    // calls in flight (at most 5 on the model) and any answered in the few ms before their group write.
    const calls = readFileSync(join(first.dir, 'calls.jsonl'), 'utf8').trim().split('\n').length;
    expect(callsBefore).toBeGreaterThanOrEqual(5);
    expect(stored).toBeGreaterThanOrEqual(5);
    expect(calls).toBeGreaterThanOrEqual(22);
    expect(calls - 22).toBeLessThanOrEqual(callsBefore - stored);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it("writes a request's log line while it keeps serving, not only when it stops", async () => {
    const { child, out, address, exited } = await startServe(['--allow-mock']);
    expect((await askAndWait(address, 'mock:m')).status).toBe(200);
    // Lines are written in blocks, but a lone line still goes out within the flush interval.
    for (let i = 0; i < 200 && !out.stderr.includes('"msg":"request completed"'); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    const line = out.stderr.split('\n').find((l) => l.includes('"msg":"request completed"'));
    expect(line && JSON.parse(line)).toMatchObject({
      req: { method: 'POST', path: '/v1/tasks', tenant: 'acme' },
      res: { status: 200 },
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('answers a request still waiting when the shutdown grace period ends with 503, then closes it', async () => {
    const config = 'providers:\n  mock:\n    models:\n      slow: { latency: 600000 }\n';
    const { child, out, address, exited } = await startServe(
      ['--config', 'fanout.yaml', '--shutdown-grace-ms', '300'],
      { 'fanout.yaml': config },
    );
    const waiting = askAndWait(address, 'mock:slow').then(
      (r) => r.status,
      (e: unknown) => e,
    );
    for (;;) {
      const ready = (await (await fetch(`${address}/readyz`)).json()) as { pending: number };
      if (ready.pending === 1) break;
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await waiting).toBe(503);
    expect(out.stderr).toContain('requests in progress have 300 ms to finish');
    expect(out.stderr).toContain('closed the connections still open');
  });

  it('names a bad quota or grace period flag', () => {
    for (const [flag, value] of [
      ['--tenant-tpm', 'lots'],
      ['--tenant-rpm', '-1'],
      ['--shutdown-grace-ms', '1.5'],
      ['--max-connections', '0'],
      ['--request-timeout-ms', 'soon'],
      ['--tenant-weight', 'acme'],
      ['--tenant-concurrency', '0'],
    ]) {
      const run = spawnSync(
        process.execPath,
        [bin, 'serve', '--port', '0', '--store', 'memory', flag as string, value as string],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
      );
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`${flag}: expected`);
      expect(run.stderr).toContain(`"${value}"`);
    }
  });

  it('refuses to serve beyond loopback without keys', () => {
    const run = spawnSync(process.execPath, [bin, 'serve', '--host', '0.0.0.0', '--port', '0', '--store', 'memory'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('refusing to serve on 0.0.0.0 without API keys');
  });
});

describe('fanout serve --redis', () => {
  it('shares cached answers between servers on one Redis, and says where limits and cache live', async () => {
    const config = 'providers:\n  mock:\n    models:\n      m: { latency: 0 }\n';
    // A database of the test Redis of its own: no other test's workers take these tasks.
    const redisUrl = `${inject('redisUrl')}/9`;
    // B leaves the queue to others: the first task runs on A; A stops, and the second runs on C, a new process.
    const a = await startServe(['--config', 'fanout.yaml', '--redis', redisUrl], { 'fanout.yaml': config });
    const b = await startServe(['--config', 'fanout.yaml', '--redis', redisUrl, '--work', '0'], {
      'fanout.yaml': config,
    });
    let c: Awaited<ReturnType<typeof startServe>> | undefined;
    try {
      expect(a.out.stderr).toContain(`tasks in ${redisUrl}, with limits and cache`);
      const question = `one question ${randomUUID()}`;
      const ask = async () =>
        (await (
          await fetch(`${b.address}/v1/tasks?wait=1`, {
            method: 'POST',
            headers: { authorization: 'Bearer fk-test', 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'mock:m', temperature: 0, messages: [{ role: 'user', content: question }] }),
          })
        ).json()) as { result: { text: string; cache?: { source: string } } };
      const first = await ask();
      a.child.kill('SIGTERM');
      expect(await a.exited, a.out.stderr).toBe(0);
      c = await startServe(['--config', 'fanout.yaml', '--redis', redisUrl], { 'fanout.yaml': config });
      const second = await ask();
      expect(first.result.cache).toBeUndefined();
      expect(second.result.text).toBe(first.result.text);
      expect(second.result.cache?.source).toBe('stored');
    } finally {
      for (const server of [a, b, c]) server?.child.kill('SIGTERM');
      for (const server of [b, c]) if (server) expect(await server.exited, server.out.stderr).toBe(0);
    }
  });

  it('says at start that its tenant flags do not pace the tasks fanout workers run', async () => {
    const server = await startServe(['--allow-mock', '--redis', `${inject('redisUrl')}/9`, '--tenant-rpm', '60']);
    server.child.kill('SIGTERM');
    expect(await server.exited, server.out.stderr).toBe(0);
    expect(server.out.stderr).toContain(
      'the --tenant-* flags pace the gateway and the queued tasks this server runs itself; fanout workers run theirs without them',
    );
  });

  it('answers new work 503 at once with retry-after while its Redis is down, and takes it again once Redis is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-serve-redis-'));
    let redis = await startRedisServer({ dir });
    const port = Number(new URL(redis.url).port);
    const server = await startServe(['--allow-mock', '--redis', redis.url]);
    const chat = () =>
      fetch(`${server.address}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer fk-test', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock:m', messages: [{ role: 'user', content: 'hi' }] }),
      });
    const ready = async () => (await fetch(`${server.address}/readyz`)).status;
    try {
      expect((await chat()).status).toBe(200);
      await redis.stop();
      await vi.waitFor(async () => expect(await ready()).toBe(503), { timeout: 5000 });
      const refused = await chat();
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('cannot be reached');
      // Reading goes on.
      expect(
        (await fetch(`${server.address}/v1/models`, { headers: { authorization: 'Bearer fk-test' } })).status,
      ).toBe(200);
      redis = await startRedisServer({ dir, port });
      await vi.waitFor(async () => expect(await ready()).toBe(200), { timeout: 10_000 });
      expect((await chat()).status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      await redis.stop();
    }
  });
});
