import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FanoutError } from '../contracts/errors.js';
import type { ToolFunction } from '../pipeline/run.js';

/** The named exports of a module (`--tools`) that are functions, as the tools of pipeline steps. */
export async function loadTools(module: string | undefined): Promise<Record<string, ToolFunction>> {
  if (module === undefined) return {};
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(resolve(module)).href)) as Record<string, unknown>;
  } catch (error) {
    throw new FanoutError(
      'invalid_config',
      `--tools ${module}: cannot be loaded (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return Object.fromEntries(Object.entries(loaded).filter(([, value]) => typeof value === 'function')) as Record<
    string,
    ToolFunction
  >;
}
