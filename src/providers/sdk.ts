import { createRequire } from 'node:module';

/**
 * The vendor SDKs, loaded on first use: a program that never calls a
 * provider does not pay for loading it (the AWS SDK alone is tens of
 * megabytes of memory). Errors are checked against the same (CommonJS) build
 * the clients come from.
 */
const load = createRequire(import.meta.url);

let openai: typeof import('openai') | undefined;
let anthropic: typeof import('@anthropic-ai/sdk') | undefined;
let bedrock: typeof import('@aws-sdk/client-bedrock-runtime') | undefined;
let undici: typeof import('undici') | undefined;
let httpHandler: typeof import('@smithy/node-http-handler') | undefined;

export function openAiSdk(): typeof import('openai') {
  return (openai ??= load('openai') as typeof import('openai'));
}

export function anthropicSdk(): typeof import('@anthropic-ai/sdk') {
  return (anthropic ??= load('@anthropic-ai/sdk') as typeof import('@anthropic-ai/sdk'));
}

export function bedrockSdk(): typeof import('@aws-sdk/client-bedrock-runtime') {
  return (bedrock ??= load('@aws-sdk/client-bedrock-runtime') as typeof import('@aws-sdk/client-bedrock-runtime'));
}

export function nodeHttpHandlerModule(): typeof import('@smithy/node-http-handler') {
  return (httpHandler ??= load('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler'));
}

/** undici, for the non-streamed OpenAI-compatible calls (see chat-http.ts). */
export function undiciModule(): typeof import('undici') {
  return (undici ??= load('undici') as typeof import('undici'));
}
