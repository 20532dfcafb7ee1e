#!/usr/bin/env node
// Copies the files tsc does not emit (SQL migrations) from src/ to dist/, keeping their paths.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const dist = join(root, 'dist');

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (path.endsWith('.sql') || path.endsWith('.lua')) yield path;
  }
}

for (const file of walk(src)) cpSync(file, join(dist, relative(src, file)));
