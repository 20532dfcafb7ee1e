import OpenAI from 'openai';
import { createEngine, type FanoutEngine } from '../../src/create-engine.js';
import type { EngineOptions } from '../../src/core/engine-options.js';
import { createAnthropicProvider } from '../../src/providers/anthropic/anthropic-provider.js';
import { BedrockProvider } from '../../src/providers/bedrock/bedrock-provider.js';
import { createOpenAiCompatibleProvider } from '../../src/providers/openai-compatible/openai-provider.js';
import { ApiKeys } from '../../src/server/api-keys.js';
import { createFanoutServer } from '../../src/server/server.js';
import { startAnthropicFake, type AnthropicFake } from './anthropic-fake.js';
import { startBedrockFake, type BedrockFake } from './bedrock-fake.js';
import { startOpenAiFake, type OpenAiFake } from './openai-fake.js';

/**
 * `fanout serve` in front of local fakes of OpenAI, Anthropic and Bedrock
 * (the mock too), each in its vendor's wire format: one tenant (`acme`, key
 * `fk-acme`), no cache, one attempt per call, and the official openai client
 * pointed at it.
 */
export interface GatewayRig {
  openai: OpenAiFake;
  anthropic: AnthropicFake;
  bedrock: BedrockFake;
  engine: FanoutEngine;
  client: OpenAI;
  /** The gateway's base URL, `/v1` included. */
  baseURL: string;
  /** Forgets the requests the fakes have received. */
  forget(): void;
  close(): Promise<void>;
}

export async function startGatewayRig(
  options: { openAiName?: string; models?: EngineOptions['models'] } = {},
): Promise<GatewayRig> {
  const openai = await startOpenAiFake();
  const anthropic = await startAnthropicFake();
  const bedrock = await startBedrockFake();
  const engine = createEngine({
    cache: false,
    retry: { maxAttempts: 1 },
    providers: [
      createOpenAiCompatibleProvider({
        name: options.openAiName ?? 'openai',
        apiKey: 'sk-upstream',
        baseURL: openai.url,
      }),
      createAnthropicProvider({ apiKey: 'sk-ant-upstream', baseURL: anthropic.url }),
      new BedrockProvider({
        region: 'us-east-1',
        endpoint: bedrock.url,
        http1: true,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
    ],
    ...(options.models ? { models: options.models } : {}),
  });
  const app = createFanoutServer({ engine, keys: new ApiKeys([{ tenant: 'acme', key: 'fk-acme' }]) });
  const baseURL = `${await app.listen({ port: 0, host: '127.0.0.1' })}/v1`;
  return {
    openai,
    anthropic,
    bedrock,
    engine,
    client: new OpenAI({ apiKey: 'fk-acme', baseURL, maxRetries: 0 }),
    baseURL,
    forget() {
      openai.requests.length = 0;
      anthropic.requests.length = 0;
      bedrock.requests.length = 0;
    },
    async close() {
      await app.close();
      await engine.close();
      await Promise.all([openai.close(), anthropic.close(), bedrock.close()]);
    },
  };
}
