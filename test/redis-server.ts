import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * Vitest's global setup: a real Redis for the tests, of their own. With
 * `FANOUT_TEST_REDIS_URL` set, that server is used; otherwise `redis-server`
 * (Debian: `apt-get install redis-server`) is started on a free loopback port,
 * with no persistence, in a scratch directory, and stopped when the tests end.
 * Tests read the URL with `inject('redisUrl')`.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function started(redis: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${said}`)), 10_000);
    redis.once('error', (error) => {
      clearTimeout(timer);
      reject(
        new Error(
          `the tests need redis-server on PATH (Debian: apt-get install redis-server), or FANOUT_TEST_REDIS_URL: ${error.message}`,
        ),
      );
    });
    redis.stdout?.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.FANOUT_TEST_REDIS_URL;
  if (given) {
    project.provide('redisUrl', given);
    return async () => {};
  }
  const dir = mkdtempSync(join(tmpdir(), 'fanout-redis-'));
  const port = await freePort();
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await started(redis);
  project.provide('redisUrl', `redis://127.0.0.1:${port}`);
  return async () => {
    redis.kill('SIGTERM');
    await new Promise((resolve) => redis.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  };
}
