// Tools of examples/pr-review-agents.yaml: each named export is a tool a model may call.
// A tool receives the arguments the model wrote (a JSON object) and returns what the model is handed back.
import { readFile as read, realpath } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository the reviewers may read: this checkout. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The most of one file handed to a model. */
const MAX_CHARS = 20_000;

/** A file of the repository, by its path from the repository's root; never a file outside it. */
export async function read_file({ path }) {
  if (typeof path !== 'string' || path === '') return 'error: expected a path, such as src/core/engine.ts';
  let file;
  try {
    file = await realpath(join(ROOT, path));
  } catch {
    return `no file ${path} in the repository`;
  }
  const inside = relative(ROOT, file);
  if (inside.startsWith('..') || inside.startsWith(sep) || inside.split(sep).includes('node_modules'))
    return `error: ${path} is outside the repository`;
  const text = await read(file, 'utf8').catch(() => undefined);
  if (text === undefined) return `error: ${path} is not a readable file`;
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)}\n[cut at ${MAX_CHARS} characters]` : text;
}
