import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type FanoutConfig } from '../config/schema.js';
import { FanoutError } from '../contracts/errors.js';

/** Environment variables that, when set, make a provider available without a config entry. */
const KEY_VARIABLES: Record<string, string> = {
  openai: 'OPENAI_API_KEY',
  groq: 'GROQ_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
};

/**
 * Replaces `${NAME}` in every string of a parsed config with the environment
 * variable NAME. A variable that is not set is an error naming it and where
 * it is used, so a missing key is found at start-up, not on a call.
 */
export function expandEnvironment(value: unknown, env: NodeJS.ProcessEnv, path: string, missing: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined || found === '') {
        missing.push(`${path} needs the environment variable ${name}, which is not set`);
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnvironment(item, env, `${path}.${i}`, missing));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandEnvironment(item, env, `${path}.${key}`, missing)]),
    );
  }
  return value;
}

/** The vendor SDKs' own base-URL variables (proxies, Azure-style gateways, OpenRouter), for the provider of that name. */
const BASE_URL_VARIABLES: Record<string, string> = {
  openai: 'OPENAI_BASE_URL',
  anthropic: 'ANTHROPIC_BASE_URL',
};

/**
 * Adds OpenAI, Groq and Anthropic when their key variables are set and the
 * config does not name them; gives `openai` and `anthropic` the SDKs' own
 * OPENAI_BASE_URL and ANTHROPIC_BASE_URL when the config sets no `baseURL`.
 */
export function withProvidersFromEnvironment(config: FanoutConfig, env: NodeJS.ProcessEnv): FanoutConfig {
  const providers: Record<string, Record<string, unknown> | undefined> = { ...config.providers };
  for (const [name, variable] of Object.entries(KEY_VARIABLES)) {
    if (providers[name] === undefined && env[variable]) providers[name] = { apiKey: env[variable] };
  }
  for (const [name, variable] of Object.entries(BASE_URL_VARIABLES)) {
    const provider = providers[name];
    const baseURL = env[variable];
    if (provider && provider.baseURL === undefined && baseURL) {
      if (!URL.canParse(baseURL))
        throw new FanoutError('invalid_config', `${variable}: expected a URL such as https://proxy.example.com/v1`);
      providers[name] = { ...provider, baseURL };
    }
  }
  return { ...config, providers: providers as FanoutConfig['providers'] };
}

/**
 * Reads a YAML (or JSON) config file. The path comes from `--config`, else
 * from the FANOUT_CONFIG environment variable; with neither, the config is
 * empty. `${NAME}` in any value is taken from the environment, and OpenAI
 * (OPENAI_API_KEY) and Groq (GROQ_API_KEY) are available when their keys are set.
 */
export async function loadConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FanoutConfig> {
  const file = path ?? env.FANOUT_CONFIG;
  if (!file) return withProvidersFromEnvironment(parseConfig({}), env);
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
    throw new FanoutError(
      'invalid_config',
      `config file ${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  return fromData(data, file, env);
}

/** A parsed config object (a config file's, or a pipeline file's `config`) with the environment applied and checked. */
export function fromData(data: unknown, source: string, env: NodeJS.ProcessEnv = process.env): FanoutConfig {
  const missing: string[] = [];
  const expanded = expandEnvironment(data ?? {}, env, source, missing);
  if (missing.length > 0) throw new FanoutError('invalid_config', missing.join('; '));
  return withProvidersFromEnvironment(parseConfig(expanded, source), env);
}
