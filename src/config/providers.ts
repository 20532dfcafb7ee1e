import { ValidationError } from '../contracts/errors.js';
import { AnthropicProvider } from '../providers/anthropic/anthropic-provider.js';
import { BedrockProvider } from '../providers/bedrock/bedrock-provider.js';
import { OpenAiCompatibleProvider } from '../providers/openai-compatible/openai-provider.js';
import type { Provider } from '../contracts/provider.js';
import type { FanoutConfig, OpenAiCompatibleSettings } from './schema.js';

/** What the well-known OpenAI-compatible services need beyond a key. */
const KNOWN: Record<string, { baseURL: string; dialect: 'openai' | 'groq'; needsKey: true }> = {
  openai: { baseURL: 'https://api.openai.com/v1', dialect: 'openai', needsKey: true },
  groq: { baseURL: 'https://api.groq.com/openai/v1', dialect: 'groq', needsKey: true },
  anthropic: { baseURL: 'https://api.anthropic.com', dialect: 'openai', needsKey: true },
};

/**
 * The providers a config names, other than the mock: each an
 * OpenAI-compatible client. OpenAI and Groq need a key and know their URL;
 * any other name (a local vLLM or Ollama server) needs a `baseURL`.
 */
export function providersFromConfig(config: FanoutConfig): Provider[] {
  const providers: Provider[] = [];
  const issues: string[] = [];
  for (const [name, settings] of Object.entries(config.providers ?? {})) {
    if (name === 'mock' || settings === undefined) continue;
    const options = settings as OpenAiCompatibleSettings;
    const kind =
      options.kind ?? (name === 'anthropic' ? 'anthropic' : name === 'bedrock' ? 'bedrock' : 'openai-compatible');
    if (kind === 'bedrock') {
      // Credentials come from the AWS SDK's own chain (environment, profile, instance role).
      providers.push(
        new BedrockProvider({
          name,
          region: options.region,
          endpoint: options.endpoint,
          http1: options.http1,
          timeouts: options.timeouts,
        }),
      );
      continue;
    }
    const known = KNOWN[name];
    if (known && !options.apiKey) {
      issues.push(
        `providers.${name}.apiKey: ${name} needs an API key (write apiKey: "\${${name.toUpperCase()}_API_KEY}" to take it from the environment)`,
      );
      continue;
    }
    const baseURL = options.baseURL ?? known?.baseURL;
    if (!baseURL) {
      issues.push(
        `providers.${name}.baseURL: expected the server's URL, e.g. http://localhost:11434/v1 for Ollama or http://localhost:8000/v1 for vLLM`,
      );
      continue;
    }
    if (kind === 'anthropic') {
      if (!options.apiKey) {
        issues.push(
          `providers.${name}.apiKey: Anthropic needs an API key (write apiKey: "\${ANTHROPIC_API_KEY}" to take it from the environment)`,
        );
        continue;
      }
      providers.push(
        new AnthropicProvider({
          name,
          apiKey: options.apiKey,
          baseURL,
          timeoutMs: options.timeoutMs,
          timeouts: options.timeouts,
        }),
      );
      continue;
    }
    providers.push(
      new OpenAiCompatibleProvider({
        name,
        apiKey: options.apiKey ?? 'none',
        baseURL,
        dialect: options.dialect ?? known?.dialect ?? 'openai',
        timeoutMs: options.timeoutMs,
        timeouts: options.timeouts,
      }),
    );
  }
  if (issues.length > 0) throw new ValidationError('invalid_config', issues);
  return providers;
}
