#!/usr/bin/env node
// Keeps time, timers, randomness and the environment out of the library.
// Only the clocks (src/contracts/clock.ts, manual-clock.ts) and src/contracts/random.ts may touch time and randomness,
// so that every other part can run on ManualClock and a seeded Random; only the
// CLI may read process.env. Test files and src/testing/ are exempt.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const srcDir = join(root, 'src');

const timeRules = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew\s+Date\s*\(\s*\)/, 'new Date() without an argument'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/(?<![.\w])(setTimeout|setInterval|setImmediate)\s*\(/, 'a timer'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\brandomUUID\s*\(/, 'randomUUID()'],
  [/\brandomBytes\s*\(/, 'randomBytes()'],
];
const envRule = [/\bprocess\.env\b/, 'process.env'];

const timeExempt = new Set(['contracts/clock.ts', 'contracts/manual-clock.ts', 'contracts/random.ts']);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (path.endsWith('.ts') && !path.endsWith('.test.ts')) yield path;
  }
}

/** Blanks out comments and string contents so that prose cannot trip a rule. */
function codeOnly(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/\/\/.*$/gm, '')
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "''")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
}

const problems = [];
for (const file of walk(srcDir)) {
  const rel = relative(srcDir, file).split(sep).join('/');
  if (rel.startsWith('testing/')) continue;
  const rules = [];
  if (!timeExempt.has(rel)) rules.push(...timeRules);
  if (!rel.startsWith('cli/')) rules.push(envRule);
  const lines = codeOnly(readFileSync(file, 'utf8')).split('\n');
  lines.forEach((line, index) => {
    for (const [pattern, what] of rules) {
      if (pattern.test(line))
        problems.push(
          `src/${rel}:${index + 1}: ${what} (use the injected Clock/Random, or read the environment in src/cli/)`,
        );
    }
  });
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`check-time: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log('check-time: no time, timer, randomness or environment access outside their owners');
