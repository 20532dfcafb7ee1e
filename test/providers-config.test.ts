import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandEnvironment, fromData } from '../src/cli/config-file.js';
import { providersFromConfig } from '../src/config/providers.js';
import { createEngine } from '../src/create-engine.js';
import { message, startAnthropicFake, type AnthropicFake } from './fakes/anthropic-fake.js';
import { startBedrockFake, type BedrockFake } from './fakes/bedrock-fake.js';
import { completion, startOpenAiFake, type OpenAiFake } from './fakes/openai-fake.js';

const root = new URL('..', import.meta.url).pathname;

function fanout(
  cwd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/fanout.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let fake: OpenAiFake;
let anthropic: AnthropicFake;
let bedrock: BedrockFake;
beforeAll(async () => {
  fake = await startOpenAiFake();
  anthropic = await startAnthropicFake();
  bedrock = await startBedrockFake();
});
afterAll(async () => {
  await fake.close();
  await anthropic.close();
  await bedrock.close();
});

describe('provider configuration', () => {
  it('takes ${NAME} from the environment, and names a variable that is not set and where it is used', () => {
    const missing: string[] = [];
    expect(expandEnvironment({ a: { key: '${K}', list: ['x-${K}-y'] } }, { K: 'v' }, 'cfg', missing)).toEqual({
      a: { key: 'v', list: ['x-v-y'] },
    });
    expect(() => fromData({ providers: { openai: { apiKey: '${NOT_SET_ANYWHERE}' } } }, 'fanout.yaml', {})).toThrow(
      'fanout.yaml.providers.openai.apiKey needs the environment variable NOT_SET_ANYWHERE, which is not set',
    );
  });

  it('adds OpenAI and Groq when their keys are in the environment', () => {
    const config = fromData({}, 'none', { OPENAI_API_KEY: 'sk-a', GROQ_API_KEY: 'gsk-b', ANTHROPIC_API_KEY: 'sk-ant' });
    expect(providersFromConfig(config).map((p) => [p.name, p.constructor.name])).toEqual([
      ['openai', 'OpenAiCompatibleProvider'],
      ['groq', 'OpenAiCompatibleProvider'],
      ['anthropic', 'AnthropicProvider'],
    ]);
  });

  it("sends openai: and anthropic: calls to the SDKs' own base-URL variables when the config sets none, streamed or not", async () => {
    const env = {
      OPENAI_API_KEY: 'sk-a',
      ANTHROPIC_API_KEY: 'sk-ant',
      OPENAI_BASE_URL: fake.url,
      ANTHROPIC_BASE_URL: anthropic.url,
    };
    fake.requests.length = 0;
    anthropic.requests.length = 0;
    const engine = createEngine({ providers: providersFromConfig(fromData({}, 'none', env)), cache: false });
    const ask = (model: string, stream: boolean) =>
      engine.submit({ model, messages: [{ role: 'user', content: 'hi' }], maxTokens: 20, stream }).result();
    fake.script({ kind: 'json', body: completion('plain') }, { kind: 'stream', deltas: ['stre', 'amed'] });
    anthropic.script({ kind: 'json', body: message('plain') }, { kind: 'stream', deltas: ['stre', 'amed'] });
    const texts = [
      (await ask('openai:gpt-4o-mini', false)).text,
      (await ask('openai:gpt-4o-mini', true)).text,
      (await ask('anthropic:claude-haiku-4-5', false)).text,
      (await ask('anthropic:claude-haiku-4-5', true)).text,
    ];
    await engine.close();
    expect(texts).toEqual(['plain', 'streamed', 'plain', 'streamed']);
    expect([fake.requests.length, anthropic.requests.length]).toEqual([2, 2]);
    fake.requests.length = 0;
    anthropic.requests.length = 0;
    // A baseURL in the config wins over the variable.
    const configured = fromData({ providers: { openai: { apiKey: 'k', baseURL: 'http://127.0.0.1:1/v1' } } }, 'c', env);
    expect((configured.providers?.openai as { baseURL?: string } | undefined)?.baseURL).toBe('http://127.0.0.1:1/v1');
    expect(() => fromData({}, 'none', { ...env, OPENAI_BASE_URL: 'not a url' })).toThrow(
      /OPENAI_BASE_URL: expected a URL/,
    );
  });

  it('makes a Bedrock provider from its region, the credentials left to the AWS SDK', () => {
    const [bedrock] = providersFromConfig(fromData({ providers: { bedrock: { region: 'us-west-2' } } }, 'c', {}));
    expect([bedrock?.name, bedrock?.constructor.name, bedrock?.accounting('anthropic.claude-opus-5-v1:0')]).toEqual([
      'bedrock',
      'BedrockProvider',
      { rule: 'bedrock', outputBurndown: 5 },
    ]);
  });

  it('says what a provider is missing', () => {
    expect(() => providersFromConfig(fromData({ providers: { groq: {} } }, 'c', {}))).toThrow(
      'providers.groq.apiKey: groq needs an API key (write apiKey: "${GROQ_API_KEY}" to take it from the environment)',
    );
    expect(() => providersFromConfig(fromData({ providers: { ollama: {} } }, 'c', {}))).toThrow(
      "providers.ollama.baseURL: expected the server's URL",
    );
    expect(() => fromData({ providers: { vllm: { baseURL: 'not a url' } } }, 'c', {})).toThrow(
      /providers\.vllm\.baseURL: expected a URL/,
    );
  });

  it('gives each provider its own call timeouts, over those of the whole config', () => {
    const config = fromData(
      {
        timeouts: { idleMs: 5000 },
        providers: { vllm: { baseURL: 'http://localhost:8000/v1', timeouts: { perOutputTokenMs: 500 } } },
      },
      'c',
      {},
    );
    expect(providersFromConfig(config).map((p) => p.timeouts)).toEqual([{ perOutputTokenMs: 500 }]);
    expect(() => fromData({ timeouts: { firstByteMs: 0 } }, 'c', {})).toThrow(/timeouts\.firstByteMs/);
  });

  it('ends a batch on a server that accepts calls and never answers, each line failed with the limit it passed', async () => {
    fake.script({ kind: 'hang' });
    const dir = mkdtempSync(join(tmpdir(), 'fanout-providers-'));
    writeFileSync(
      join(dir, 'in.jsonl'),
      ['a', 'b', 'c'].map((id) => JSON.stringify({ id, model: 'vllm:llama-3.1-8b', prompt: 'hi' })).join('\n'),
    );
    writeFileSync(
      join(dir, 'fanout.yaml'),
      `retry: { maxAttempts: 1 }\nproviders:\n  vllm: { baseURL: "${fake.url}", timeouts: { firstByteMs: 300, perOutputTokenMs: 0 } }\n`,
    );
    const run = await fanout(dir, ['batch', 'in.jsonl', '-o', 'out.jsonl', '--config', 'fanout.yaml', '--json'], {});
    const lines = readFileSync(join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.custom_id, l.error?.code, l.error?.message])).toEqual(
      ['a', 'b', 'c'].map((id) => [
        id,
        'timeout',
        'no answer began within 0.3 s of sending the call (first-byte limit)',
      ]),
    );
    expect(run.code).not.toBe(0);
  });

  it('runs a batch on openai: and on a local OpenAI-compatible server, keys from the environment', async () => {
    fake.script({ kind: 'json', body: completion('from the fake') });
    fake.requests.length = 0;
    const dir = mkdtempSync(join(tmpdir(), 'fanout-providers-'));
    writeFileSync(
      join(dir, 'in.jsonl'),
      [
        JSON.stringify({ id: 'a', model: 'openai:gpt-4o-mini', prompt: 'hi' }),
        JSON.stringify({ id: 'b', model: 'vllm:llama-3.1-8b', prompt: 'hi' }),
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'fanout.yaml'),
      `providers:\n  openai: { apiKey: "\${FAKE_OPENAI_KEY}", baseURL: "${fake.url}" }\n  vllm: { baseURL: "${fake.url}" }\n`,
    );
    const run = await fanout(dir, ['batch', 'in.jsonl', '-o', 'out.jsonl', '--config', 'fanout.yaml', '--json'], {
      FAKE_OPENAI_KEY: 'sk-from-env',
    });
    // One notice per model used without limits, nothing else.
    expect(
      run.stderr
        .trim()
        .split('\n')
        .map((line) => line.slice(0, line.indexOf(' has no limits configured'))),
    ).toEqual(['fanout: openai:gpt-4o-mini', 'fanout: vllm:llama-3.1-8b']);
    expect(run.code).toBe(0);
    const lines = readFileSync(join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.response.body.choices[0].message.content)).toEqual(['from the fake', 'from the fake']);
    expect(fake.requests.map((r) => [r.body.model, r.headers.authorization]).sort()).toEqual([
      ['gpt-4o-mini', 'Bearer sk-from-env'],
      ['llama-3.1-8b', 'Bearer none'],
    ]);
    const missing = await fanout(dir, ['batch', 'in.jsonl', '-o', 'out2.jsonl', '--config', 'fanout.yaml'], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('needs the environment variable FAKE_OPENAI_KEY, which is not set');
  });

  it('runs a batch on anthropic: models', async () => {
    anthropic.script({
      kind: 'json',
      body: message('from claude', {
        input_tokens: 9,
        output_tokens: 3,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      }),
    });
    const dir = mkdtempSync(join(tmpdir(), 'fanout-providers-'));
    writeFileSync(
      join(dir, 'in.jsonl'),
      JSON.stringify({
        id: 'a',
        model: 'anthropic:claude-sonnet-5',
        system: 'Be brief.',
        prompt: 'hi',
        max_tokens: 100,
      }),
    );
    writeFileSync(
      join(dir, 'fanout.yaml'),
      `providers:\n  anthropic: { apiKey: "\${FAKE_ANTHROPIC_KEY}", baseURL: "${anthropic.url}" }\n`,
    );
    const run = await fanout(dir, ['batch', 'in.jsonl', '-o', 'out.jsonl', '--config', 'fanout.yaml', '--json'], {
      FAKE_ANTHROPIC_KEY: 'sk-ant-env',
    });
    expect(run.stderr).toBe(
      'fanout: anthropic:claude-sonnet-5 has no limits configured; fanout sends one call first and learns them from the provider\'s answers (set models["anthropic:claude-sonnet-5"].limits to start at full speed)\n',
    );
    expect(run.code).toBe(0);
    const [line] = readFileSync(join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(line.response.body.choices[0].message.content).toBe('from claude');
    expect(line.fanout.usage).toEqual({
      input_tokens: 9,
      output_tokens: 3,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
    });
    expect(anthropic.requests[0]?.headers.authorization).toBe('Bearer sk-ant-env');
    expect(anthropic.requests[0]?.body).toMatchObject({
      model: 'claude-sonnet-5',
      max_tokens: 100,
      system: [{ type: 'text', text: 'Be brief.' }],
    });
  });

  it('runs a pipeline whose steps call groq: and bedrock: models', async () => {
    fake.script({
      kind: 'json',
      headers: { 'x-ratelimit-limit-requests': '14400', 'x-ratelimit-remaining-requests': '14399' },
      body: completion('groq says hi'),
    });
    fake.requests.length = 0;
    bedrock.script({ kind: 'converse', text: 'bedrock says hi' });
    const dir = mkdtempSync(join(tmpdir(), 'fanout-providers-'));
    writeFileSync(
      join(dir, 'p.yaml'),
      [
        'config:',
        '  providers:',
        `    groq: { apiKey: "\${FAKE_GROQ_KEY}", baseURL: "${fake.url}" }`,
        `    bedrock: { region: us-east-1, endpoint: "${bedrock.url}", http1: true }`,
        'steps:',
        '  fast: { model: "groq:llama-3.1-8b-instant", prompt: "hello" }',
        '  deep: { model: "bedrock:anthropic.claude-sonnet-5-v1:0", prompt: "and {{ steps.fast.output }}" }',
      ].join('\n'),
    );
    const run = await fanout(dir, ['run', 'p.yaml', '--json', '--no-progress'], {
      FAKE_GROQ_KEY: 'gsk-env',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    expect(run.stderr).toContain(
      'fanout: groq:llama-3.1-8b-instant has no limits configured; fanout sends one call first',
    );
    expect(run.stderr).toContain(
      'fanout: bedrock:anthropic.claude-sonnet-5-v1:0 has no limits configured and its provider reports none',
    );
    expect(run.stderr.trim().split('\n')).toHaveLength(2);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect([result.steps.fast.output, result.steps.deep.output]).toEqual(['groq says hi', 'bedrock says hi']);
    expect(bedrock.requests[0]?.body).toMatchObject({
      messages: [{ role: 'user', content: [{ text: 'and groq says hi' }] }],
    });
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer gsk-env');
  });
});
