import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startServe } from './processes/serve-process.js';
import { startWorker } from './processes/worker-process.js';
import { parse as parseYaml } from 'yaml';
import { fromData } from '../src/cli/config-file.js';
import { engineOptionsFromConfig } from '../src/config/engine-options.js';
import { createEngine } from '../src/create-engine.js';

/**
 * Every code block of README.md is run here as written, or checked against
 * what it shows: a block no check claims fails the last test, so a new block
 * cannot go in unrun.
 */

const root = new URL('..', import.meta.url).pathname;
const fanoutBin = join(root, 'bin/fanout.js');

interface Block {
  /** Line of the opening fence, 1-based. */
  line: number;
  lang: string;
  text: string;
}

function codeBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i] as string;
    if (!open.startsWith('```')) continue;
    const end = lines.findIndex((line, j) => j > i && line.startsWith('```'));
    if (end < 0) throw new Error(`README.md: the code block at line ${i + 1} is never closed`);
    blocks.push({ line: i + 1, lang: open.slice(3).trim(), text: `${lines.slice(i + 1, end).join('\n')}\n` });
    i = end;
  }
  return blocks;
}

const blocks = codeBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
const claimed = new Set<Block>();

/** The one block `match` picks, marked as checked. */
function block(what: string, match: (b: Block) => boolean): Block {
  const found = blocks.filter(match);
  if (found.length !== 1) throw new Error(`README.md: expected one code block ${what}, found ${found.length}`);
  claimed.add(found[0] as Block);
  return found[0] as Block;
}

const starts = (prefix: string) => (b: Block) => b.text.startsWith(prefix);

/** A scratch directory with the repository's examples and node_modules, as a fresh clone has them. */
const work = mkdtempSync(join(tmpdir(), 'fanout-readme-'));
symlinkSync(join(root, 'examples'), join(work, 'examples'));
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a shell command as README writes it; `fanout` (or `npx fanout`) is this checkout's. */
function sh(command: string, cwd = work, timeoutMs = 120_000): Promise<Ran> {
  const local = command.replace(/^(npx )?fanout /, `node ${fanoutBin} `);
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', local], { cwd, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a TypeScript block as a module of its own in the scratch directory. */
function tsx(name: string, source: string, until?: (stdout: string) => boolean): Promise<Ran> {
  const file = join(work, `${name}.mts`);
  writeFileSync(file, source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: work, timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (until?.(stdout)) child.kill();
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Numbers (and their units) that vary from run to run, as one mark. */
const shape = (line: string): string => line.replace(/\d[\d,.]*(\s?(µs|ms|min|s)\b)?/g, '#').replace(/# #/g, '#');

const quickStart = block('of the quick start', starts('npm ci && npx fanout batch'));
const quickStartSummary = block(
  'with the summary the quick start prints',
  starts('fanout batch: 300 lines from examples/prompts.jsonl'),
);
const library = block(
  'of the library',
  (b) =>
    b.lang === 'ts' && b.text.includes("import { createEngine } from 'fanout'") && !b.text.includes('fanout/redis'),
);
const pipelineYaml = block('of a pipeline from examples/pr-review.yaml', starts('# examples/pr-review.yaml'));
const simulateRun = block('of fanout simulate', starts('$ fanout simulate'));
const agentsYaml = block('of the agents pipeline', starts('# examples/pr-review-agents.yaml'));
const runFragment = block('of engine.run', starts('const run = await engine.run('));
const ownParts = block(
  'of the contract suites',
  starts("import { limiterContract, taskStoreContract } from 'fanout/testing/contracts';"),
);
const sharedLimits = block(
  'of shared limits',
  starts("import { createEngine } from 'fanout';\nimport { RedisLimiter }"),
);
const sharedEngine = block(
  'of an engine on Redis',
  starts("import { createEngine } from 'fanout';\nimport { redisParts }"),
);
const machinesCommands = block('of the machines sharing a Redis', starts('redis-server --port 6379'));
const queueExample = block('of the task queue', starts("import { TaskQueue } from 'fanout/queue';"));
const providersYaml = block('of providers', (b) => b.lang === 'yaml' && b.text.startsWith('providers:\n  anthropic:'));
const serveCommand = block('that starts fanout serve', starts('fanout serve --key'));
const curlCalls = block('of curl calls', starts('curl -s -X POST http://127.0.0.1:8787/v1/tasks'));
const webSocket = block('of the WebSocket', starts("import { WebSocket } from 'ws';"));
const openAiClient = block('of the OpenAI client', starts("import OpenAI from 'openai';"));
const batchUsage = block('of the fanout batch usage', starts('fanout batch <input.jsonl'));
const batchInputLine = block('of a batch input line', (b) => b.lang === 'json' && b.text.includes('"method": "POST"'));
const batchOutputLine = block(
  'of a batch output line',
  (b) => b.lang === 'json' && b.text.includes('"fanout": {"line": 1'),
);
const configYaml = block('of the configuration', starts('concurrency: 64'));
const benchCommand = block('that runs the benchmarks', (b) => b.text === 'npm run bench\n');
const layout = block('of the source layout', starts('src/contracts/'));

/** Runs an example of this checkout with tsx, pointed at the Redis of `redisUrl`. */
function runExample(file: string, redisUrl: string): Promise<Ran> {
  return new Promise<Ran>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      timeout: 60_000,
      env: { ...process.env, REDIS_URL: redisUrl },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('README, the quick start', () => {
  it('installs with npm ci and tests with npm test, as CI does', () => {
    const [first, second] = quickStart.text.trim().split('\n');
    expect(first?.split(' && ')[0]).toBe('npm ci');
    expect(second).toBe('npm test');
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
  });

  it('runs the batch as written and prints the summary README shows, but for times', async () => {
    const command = (quickStart.text.split('\n')[0] as string).split(' && ')[1] as string;
    const ran = await sh(command);
    expect(ran.code).toBe(0);
    // Standard error carries the progress lines and nothing else.
    expect(
      ran.stderr
        .trim()
        .split('\n')
        .filter((line) => !/^fanout: [\d,]+\/300 done/.test(line)),
    ).toEqual([]);
    const shown = quickStartSummary.text.trim().split('\n');
    const printed = ran.stdout.trim().split('\n');
    expect(printed.map(shape)).toEqual(shown.map(shape));
    // Counts, tokens and what set the bound are the same every run: the mock is seeded.
    const steady = (lines: string[]) =>
      lines
        .filter((line) => !/wall time|latency|utilisation/.test(line))
        .map((line) => line.replace(/lower bound {2}[\d.]+ s/, 'lower bound #'));
    expect(steady(printed)).toEqual(steady(shown));
    expect(readFileSync(join(work, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(300);
  });
});

describe('README, the library', () => {
  it('shows the library example exactly as examples/library.ts, which runs to the end', async () => {
    const file = readFileSync(join(root, 'examples/library.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(library.text);
    const run = await new Promise<Ran>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'examples/library.ts'], { cwd: root, timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    // Three reviews, the two summaries, then the finished task's events loop ends at once (it printed none).
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('2 summaries');
  });

  it('shows the contract suites exactly as examples/own-parts.test.ts, which Vitest runs with the other tests', () => {
    const file = readFileSync(join(root, 'examples/own-parts.test.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(ownParts.text);
    const config = readFileSync(join(root, 'vitest.config.ts'), 'utf8');
    expect(config).toContain("'examples/**/*.test.ts'");
  });

  it('shows the shared-limits example exactly as examples/shared-limits.ts, which two processes run on one Redis', async () => {
    const file = readFileSync(join(root, 'examples/shared-limits.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(sharedLimits.text);
    const runs = await Promise.all([1, 2].map(() => runExample('examples/shared-limits.ts', inject('redisUrl'))));
    for (const run of runs) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^40 answers, \d+ round trips to Redis\n$/);
    }
  });

  it('shows the shared-engine example exactly as examples/shared-engine.ts, and runs it: the second answer from the Redis cache', async () => {
    const file = readFileSync(join(root, 'examples/shared-engine.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(sharedEngine.text);
    // A database of the test Redis of its own: the question was never answered there before.
    const ran = await runExample('examples/shared-engine.ts', `${inject('redisUrl')}/13`);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe('called then stored\n');
  });

  it('runs the workers, the server and the batch of "More than one machine" as written, and the queue example beside them', async () => {
    const file = readFileSync(join(root, 'examples/shared-queue.ts'), 'utf8');
    expect(file.slice(file.indexOf('\n') + 1)).toBe(queueExample.text);
    // A database of the test Redis of its own, so that no other test's queue meets this one.
    const url = `${inject('redisUrl')}/7`;
    const lines = machinesCommands.text.trim().split('\n');
    expect(lines[0]).toBe('redis-server --port 6379 --appendonly yes --daemonize yes');
    expect(lines[3]).toBe('fanout serve --redis redis://127.0.0.1:6379 --config examples/fanout.yaml &');
    const workers = lines.slice(1, 3).map((line) => {
      expect(line).toMatch(/^fanout worker .* &$/);
      return startWorker(root, line.replace(/ &$/, '').replace('redis://127.0.0.1:6379', url).split(' ').slice(2));
    });
    try {
      await Promise.all(workers.map((worker) => worker.ready));
      const ran = await runExample('examples/shared-queue.ts', url);
      expect(ran.stderr).toBe('');
      expect(ran.code).toBe(0);
      expect(ran.stdout).toBe('20 of 20 completed\n');
      // The server beside them: a task it takes runs on the queue.
      const serve = (lines[3] as string).replace(/ &$/, '').replace('redis://127.0.0.1:6379', url).split(' ');
      const server = await startServe(serve.slice(2), {}, root);
      try {
        const answered = await fetch(`${server.address}/v1/tasks?wait=1`, {
          method: 'POST',
          headers: { authorization: 'Bearer fk-test', 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock:reviewer', messages: [{ role: 'user', content: 'through the server' }] }),
        });
        expect(((await answered.json()) as { state: string }).state).toBe('completed');
      } finally {
        server.child.kill('SIGTERM');
        expect(await server.exited, server.out.stderr).toBe(0);
      }
      // The batch of the quick start, shared with the two workers.
      const output = join(work, 'shared-results.jsonl');
      const batch = await sh(
        (lines[4] as string).replace('redis://127.0.0.1:6379', url).replace('-o results.jsonl', `-o ${output}`),
        root,
      );
      expect(batch.code, batch.stderr).toBe(0);
      const states = readFileSync(output, 'utf8')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { fanout: { state: string } }).fanout.state);
      expect(states).toHaveLength(300);
      expect(new Set(states)).toEqual(new Set(['completed']));
    } finally {
      expect(await Promise.all(workers.map((worker) => worker.stop()))).toEqual([0, 0]);
    }
  });

  it('runs the engine.run fragment on an engine and a diff', async () => {
    const prelude = `import { createEngine } from '${join(root, 'dist/index.js')}';\nconst engine = createEngine();\nconst diff = 'diff --git a/x b/x';\n`;
    const ran = await tsx(
      'engine-run',
      `${prelude}${runFragment.text}console.log(JSON.stringify({ output: run.steps.review.output, calls: run.calls.length }));\nawait engine.close();\n`,
    );
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const printed = JSON.parse(ran.stdout) as { output: string; calls: number };
    expect(printed.calls).toBe(1);
    expect(printed.output.length).toBeGreaterThan(0);
  });
});

describe('README, pipelines', () => {
  it('quotes the three-agents pipeline of examples/pr-review.yaml as it is there', () => {
    const file = parseYaml(readFileSync(join(root, 'examples/pr-review.yaml'), 'utf8')) as {
      pipelines: Record<string, Record<string, unknown>>;
    };
    const { description: _description, ...pipeline } = file.pipelines['three-agents'] as Record<string, unknown>;
    expect(parseYaml(pipelineYaml.text)).toEqual(pipeline);
  });

  it('quotes the steps of examples/pr-review-agents.yaml as they are there', () => {
    const file = parseYaml(readFileSync(join(root, 'examples/pr-review-agents.yaml'), 'utf8')) as { steps: unknown };
    expect(parseYaml(agentsYaml.text)).toEqual(file.steps);
  });

  it('prints what README shows for fanout simulate, character for character', async () => {
    const [prompt, ...shown] = simulateRun.text.split('\n');
    const ran = await sh((prompt as string).slice(2), root);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe(shown.join('\n'));
  });
});

describe('README, configuration', () => {
  const environment = { ANTHROPIC_API_KEY: 'sk-ant-readme', OPENAI_API_KEY: 'sk-readme', GROQ_API_KEY: 'gsk-readme' };

  it('takes the providers block as a config, every provider made', async () => {
    const config = fromData(parseYaml(providersYaml.text), 'README.md', environment);
    const engine = createEngine(engineOptionsFromConfig(config));
    expect(Object.keys(config.providers ?? {})).toEqual(['anthropic', 'bedrock', 'openai', 'groq', 'vllm', 'ollama']);
    await engine.close();
  });

  it('takes the configuration block as a config', async () => {
    const config = fromData(parseYaml(configYaml.text), 'README.md', environment);
    const engine = createEngine(engineOptionsFromConfig(config));
    expect(config).toMatchObject({ concurrency: 64, timeouts: { firstByteMs: 60_000 } });
    await engine.close();
  });

  it('shows the usage fanout batch --help prints', async () => {
    const ran = await sh('fanout batch --help', root);
    expect(ran.stdout.split('\n')[0]).toBe(`Usage: ${batchUsage.text.trim()}`);
  });
});

/** README's output example, read as a pattern: "…" is any string, {…} any object, a number any number. */
function expectShape(actual: unknown, shown: unknown, path = '$'): void {
  if (typeof shown === 'string' && shown.includes('…')) {
    expect(typeof actual, path).toBe('string');
    expect((actual as string).startsWith(shown.slice(0, shown.indexOf('…'))), path).toBe(true);
  } else if (typeof shown === 'number') {
    expect(typeof actual, path).toBe('number');
  } else if (Array.isArray(shown)) {
    expect(Array.isArray(actual), path).toBe(true);
    shown.forEach((item, i) => expectShape((actual as unknown[])[i], item, `${path}[${i}]`));
  } else if (shown !== null && typeof shown === 'object') {
    expect(actual, path).toBeTypeOf('object');
    for (const [key, value] of Object.entries(shown)) {
      expect(actual, path).toHaveProperty([key]);
      if (!(typeof value === 'object' && value !== null && Object.keys(value).length === 0))
        expectShape((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
  } else {
    expect(actual, path).toEqual(shown);
  }
}

describe('README, fanout batch', () => {
  it('answers the input line README shows with an output line of the shape it shows', async () => {
    writeFileSync(join(work, 'one.jsonl'), batchInputLine.text);
    const ran = await sh('fanout batch one.jsonl -o one.out.jsonl --config examples/fanout.yaml --no-progress');
    expect(ran.code).toBe(0);
    const [line] = readFileSync(join(work, 'one.out.jsonl'), 'utf8').trim().split('\n');
    const shown = JSON.parse(batchOutputLine.text.replace(/\{…\}/g, '{}')) as unknown;
    expectShape(JSON.parse(line as string), shown);
  });
});

describe('README, fanout serve', () => {
  let server: ChildProcess;

  beforeAll(async () => {
    const command = serveCommand.text.trim().replace(/^fanout /, `exec node ${fanoutBin} `);
    server = spawn('bash', ['-c', command], { cwd: work });
    for (let i = 0; i < 200; i++) {
      const up = await fetch('http://127.0.0.1:8787/healthz').then(
        (r) => r.ok,
        () => false,
      );
      if (up) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('fanout serve did not answer /healthz within 10 s');
  });

  afterAll(async () => {
    const ended = new Promise((resolve) => server.once('close', resolve));
    server.kill('SIGTERM');
    await ended;
  });

  it('answers each curl call of README as written', async () => {
    const commands = curlCalls.text
      .replace(/\\\n\s*/g, '')
      .split('\n')
      .filter((line) => line.startsWith('curl '));
    expect(commands).toHaveLength(8);
    const ids: Record<string, string> = {};
    const outputs: string[] = [];
    for (const written of commands) {
      const command = written.replace(/\b(t|batch|run)_…/g, (placeholder, kind: string) => ids[kind] ?? placeholder);
      const ran = await sh(command, work, 60_000);
      expect(ran.code, command).toBe(0);
      outputs.push(ran.stdout);
      const posted = /-X POST \S+\/v1\/(tasks|batches|runs)\b/.exec(command);
      if (posted) {
        const id = (JSON.parse(ran.stdout) as { id: string }).id;
        ids[{ tasks: 't', batches: 'batch', runs: 'run' }[posted[1] as 'tasks' | 'batches' | 'runs']] = id;
      }
    }
    const [task, status, deleted, events, batch, batchStatus, results, run] = outputs as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    expect(JSON.parse(task)).toMatchObject({ id: expect.stringMatching(/^t_/), state: expect.any(String) });
    expect(JSON.parse(status)).toMatchObject({ id: ids.t, model: 'mock:reviewer', tenant: 'acme' });
    expect(JSON.parse(deleted)).toMatchObject({ id: ids.t });
    expect(events).toContain('event: acknowledged');
    expect(events).toMatch(/event: (response|error)/);
    expect(JSON.parse(batch)).toMatchObject({ id: expect.stringMatching(/^batch_/), lines: 300 });
    expect(JSON.parse(batchStatus)).toMatchObject({ id: ids.batch, lines: 300 });
    const lines = results
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { custom_id: string });
    expect(lines).toHaveLength(300);
    expect(JSON.parse(run)).toMatchObject({ id: expect.stringMatching(/^run_/), state: 'running' });
  });

  it('streams a task over the WebSocket as the example does', async () => {
    const ran = await tsx('websocket', webSocket.text, (stdout) => stdout.includes("type: 'response'"));
    expect(ran.stderr).toBe('');
    expect(ran.stdout).toContain("type: 'acknowledged'");
    expect(ran.stdout).toContain("type: 'delta'");
    expect(ran.stdout).toContain("type: 'response'");
  });

  it('answers the OpenAI client example, plain and streamed', async () => {
    const ran = await tsx('openai-client', openAiClient.text);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const [answer, streamed] = ran.stdout.split('\n');
    expect(answer?.length).toBeGreaterThan(0);
    expect(streamed?.length).toBeGreaterThan(0);
  });
});

describe('README, the rest', () => {
  it('names the benchmark command package.json has', () => {
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(benchCommand.text).toBe('npm run bench\n');
    expect(scripts.bench).toContain('bench/run.ts');
    // Run on every CI: .ci/run runs it after the tests.
    expect(readFileSync(join(root, '.ci/run'), 'utf8')).toMatch(/^npm run bench\b/m);
  });

  it('lists every source folder, and only those', () => {
    const listed = layout.text
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[0] as string);
    for (const folder of listed) expect(existsSync(join(root, folder)), folder).toBe(true);
    const folders = readdirSync(join(root, 'src'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `src/${entry.name}/`);
    expect(listed.filter((folder) => folder.startsWith('src/')).sort()).toEqual(folders.sort());
  });

  it('has no code block that nothing here runs or checks', () => {
    const unchecked = blocks
      .filter((b) => !claimed.has(b))
      .map((b) => `line ${b.line} (${b.lang || 'text'}): ${b.text.split('\n')[0]}`);
    expect(unchecked).toEqual([]);
  });
});
