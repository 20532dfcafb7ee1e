import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = join(new URL('..', import.meta.url).pathname, 'bin/fanout.js');

describe('fanout serve', () => {
  it('starts on the embedded store with no setup, answers, and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-serve-'));
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--key', 'acme=fk-test'], { cwd: dir, env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    const address = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /listening on (http:\/\/\S+) /.exec(stderr);
        if (match) resolve(match[1] as string);
      });
      child.on('exit', () => reject(new Error(stderr)));
    });
    expect(stderr).toContain('tasks in .fanout/fanout.db');
    const response = await fetch(`${address}/v1/tasks?wait=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer fk-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock:m', messages: [{ role: 'user', content: 'hello over http' }] }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ state: 'completed', tenant: 'acme' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('unfinished tasks stay in the store');
  });

  it('refuses to serve beyond loopback without keys', () => {
    const run = spawnSync(process.execPath, [bin, 'serve', '--host', '0.0.0.0', '--port', '0', '--store', 'memory'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('refusing to serve on 0.0.0.0 without API keys');
  });
});
