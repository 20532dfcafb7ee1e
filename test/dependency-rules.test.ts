import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const depcruise = join(root, 'node_modules/.bin/depcruise');

/** Runs the project's dependency rules on a tree of files. */
function check(cwd: string): { code: number | null; output: string } {
  const run = spawnSync(depcruise, ['src', '--config', join(root, '.dependency-cruiser.cjs'), '--output-type', 'err'], {
    cwd,
    encoding: 'utf8',
  });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-deps-'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('the dependency rules', () => {
  it('pass on fanout itself', () => {
    const run = check(root);
    expect(run.output).toContain('no dependency violations found');
    expect(run.code).toBe(0);
  });

  it('fail on a planted cycle, a contract importing the engine, and the engine importing the server', () => {
    const dir = tree({
      'src/contracts/types.ts':
        "import type { Engine } from '../core/engine.js';\nexport type Handle = { engine: Engine };\n",
      'src/core/engine.ts':
        "import type { Handle } from '../contracts/types.js';\nimport { serve } from '../server/server.js';\nexport class Engine { handle?: Handle; start = serve; }\n",
      'src/server/server.ts': 'export function serve(): void {}\n',
    });
    try {
      const run = check(dir);
      expect(run.code).not.toBe(0);
      expect(run.output).toContain('error no-cycles: src/contracts/types.ts');
      expect(run.output).toContain('error contracts-import-nothing-above: src/contracts/types.ts → src/core/engine.ts');
      expect(run.output).toContain('error engine-knows-no-concrete-part: src/core/engine.ts → src/server/server.ts');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the function length rule', () => {
  const script = join(root, 'scripts/check-function-length.mjs');

  it('passes on fanout itself, and names a function over 100 lines', () => {
    const own = spawnSync(process.execPath, [script, join(root, 'src')], { cwd: root, encoding: 'utf8' });
    expect(own.stdout).toContain('no function over 100 lines');
    expect(own.status).toBe(0);
    const body = Array.from({ length: 100 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const dir = tree({ 'src/long.ts': `export function tooLong(): void {\n${body}\n}\n` });
    try {
      const planted = spawnSync(process.execPath, [script, join(dir, 'src')], { cwd: dir, encoding: 'utf8' });
      expect(planted.status).toBe(1);
      expect(planted.stderr).toContain('src/long.ts:1: tooLong is 102 lines (at most 100)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
