import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

/** The first ```ts block after a heading of README.md. */
function blockAfter(heading: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no heading ${heading}`);
  const open = readme.indexOf('```ts\n', start) + '```ts\n'.length;
  return readme.slice(open, readme.indexOf('```\n', open));
}

describe('README', () => {
  it('shows the library example exactly as examples/library.ts, which runs to the end', () => {
    const file = readFileSync(join(root, 'examples/library.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(blockAfter('## The library'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'examples/library.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');
    // Three reviews, the two summaries, then the finished task's events loop ends at once (it printed none).
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('2 summaries');
  });
});
