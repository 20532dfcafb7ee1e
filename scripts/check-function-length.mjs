#!/usr/bin/env node
// No function in src/ (tests aside) is longer than 100 lines: a long one is split where its parts are.
// Usage: node scripts/check-function-length.mjs [folder] (default: src)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const MAX_LINES = 100;
const folder = process.argv[2] ?? 'src';

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (path.endsWith('.ts') && !path.endsWith('.test.ts') && !path.endsWith('.d.ts')) yield path;
  }
}

const problems = [];
for (const file of walk(folder)) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
      const last = source.getLineAndCharacterOfPosition(node.end).line + 1;
      const lines = last - first + 1;
      if (lines > MAX_LINES) {
        const name = node.name ? node.name.getText(source) : '(a function without a name)';
        problems.push(`${relative(process.cwd(), file)}:${first}: ${name} is ${lines} lines (at most ${MAX_LINES})`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`check-function-length: ${problems.length} function(s) over ${MAX_LINES} lines`);
  process.exit(1);
}
console.log(`check-function-length: no function over ${MAX_LINES} lines`);
