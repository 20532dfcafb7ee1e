import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const bin = new URL('../../bin/fanout.js', import.meta.url).pathname;

/** Starts `fanout serve` in a fresh directory and resolves once it listens. */
export async function startServe(args: string[], files: Record<string, string> = {}, inDir?: string) {
  const dir = inDir ?? mkdtempSync(join(tmpdir(), 'fanout-serve-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--key', 'acme=fk-test', ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
  });
  const out = { stderr: '' };
  const address = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      out.stderr += chunk.toString();
      const match = /listening on (http:\/\/\S+) /.exec(out.stderr);
      if (match) resolve(match[1] as string);
    });
    child.on('exit', () => reject(new Error(out.stderr)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, out, address, exited, dir };
}
