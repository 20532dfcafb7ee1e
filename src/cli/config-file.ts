import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type FanoutConfig } from '../config/schema.js';
import { FanoutError } from '../core/errors.js';

/**
 * Reads a YAML (or JSON) config file. The path comes from `--config`, else
 * from the FANOUT_CONFIG environment variable; with neither, the config is empty.
 */
export async function loadConfig(path: string | undefined): Promise<FanoutConfig> {
  const file = path ?? process.env.FANOUT_CONFIG;
  if (!file) return parseConfig({});
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new FanoutError('invalid_config', `config file ${file}: ${why}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new FanoutError('invalid_config', `config file ${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return parseConfig(data, file);
}
