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

export interface RedisServer {
  url: string;
  /** Stops the server (SIGTERM, so an append-only file is flushed) and removes its directory unless one was given. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` on a free loopback port, in `dir` (a scratch directory
 * by default), without snapshots; with `appendOnly`, every write is kept in an
 * append-only file there, so a server started again in the same directory has it.
 */
export async function startRedisServer(
  options: { dir?: string; appendOnly?: boolean; port?: number } = {},
): Promise<RedisServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'fanout-redis-'));
  const port = options.port ?? (await freePort());
  const appendOnly = options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...appendOnly, '--dir', dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await started(redis);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (redis.exitCode === null && redis.signalCode === null) {
        redis.kill('SIGTERM');
        await new Promise((resolve) => redis.once('exit', resolve));
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.FANOUT_TEST_REDIS_URL;
  if (given) {
    project.provide('redisUrl', given);
    return async () => {};
  }
  const server = await startRedisServer();
  project.provide('redisUrl', server.url);
  return server.stop;
}
