import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/fanout.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fanout(
  args: string[],
  options: { cwd?: string; onStderr?: (text: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cwd = options.cwd ?? workdir();
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, FANOUT_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      options.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function workdir(): string {
  return mkdtempSync(join(tmpdir(), 'fanout-batch-'));
}

function readJsonl(path: string): Array<Record<string, any>> {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

/** A batch of 30 lines paced at 10 a second, sent `signal` once its first progress line is out. */
async function slowBatchStoppedBy(signal: NodeJS.Signals, extra: string[] = []): Promise<{ dir: string; run: Run }> {
  const dir = workdir();
  const input = join(dir, 'in.jsonl');
  writeFileSync(
    input,
    Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `c${i}`, model: 'mock:slow', prompt: `p${i}` })).join(
      '\n',
    ),
  );
  const config = join(dir, 'fanout.yaml');
  writeFileSync(
    config,
    'models:\n  "mock:slow": { limits: { requestsPerMinute: 600, burstSeconds: 1 } }\nproviders:\n  mock:\n    models:\n      slow: { latency: 200 }\n',
  );
  let sent = false;
  const run = await fanout(['batch', input, '-o', join(dir, 'out.jsonl'), '--config', config, ...extra], {
    cwd: dir,
    onStderr: (text, child) => {
      if (!sent && /\d+\/30 done/.test(text)) {
        sent = true;
        child.kill(signal);
      }
    },
  });
  return { dir, run };
}

describe('fanout batch', () => {
  it('answers 10,000 lines in input order under a configured limit, with a computed utilisation and no 429', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    const lines = Array.from({ length: 10_000 }, (_, i) =>
      i % 2 === 0
        ? JSON.stringify({
            id: `c${i}`,
            model: i % 4 === 0 ? 'mock:a' : 'mock:b',
            prompt: `prompt ${i}`,
            max_tokens: 64,
          })
        : JSON.stringify({
            custom_id: `c${i}`,
            method: 'POST',
            url: '/v1/chat/completions',
            body: { model: 'mock:b', messages: [{ role: 'user', content: `prompt ${i}` }], max_tokens: 64 },
          }),
    );
    writeFileSync(input, `${lines.join('\n')}\n`);
    const config = join(dir, 'fanout.yaml');
    // The upstream (mock) enforces the same limits it tells fanout about: a run faster than allowed would see 429s.
    writeFileSync(
      config,
      [
        'models:',
        '  "mock:a": { limits: { requestsPerMinute: 150000, burstSeconds: 1 } }',
        '  "mock:b": { limits: { requestsPerMinute: 300000, tokensPerMinute: 30000000, burstSeconds: 1 } }',
        'providers:',
        '  mock:',
        '    models:',
        '      a: { latency: 2, limits: { requestsPerMinute: 150000, burstSeconds: 1 } }',
        '      b: { latency: 1, limits: { requestsPerMinute: 300000, tokensPerMinute: 30000000, burstSeconds: 1 } }',
      ].join('\n'),
    );
    const output = join(dir, 'out.jsonl');
    const run = await fanout(['batch', input, '-o', output, '--config', config, '--json']);
    // Standard error holds the progress lines (one every 2 s, however many a slow machine needs; the total is
    // the lines read so far, which on a slow machine is not yet all of them) and nothing else.
    expect(run.stderr.split('\n').filter((line) => line !== '' && !/^fanout: [\d,]+\/[\d,]+ done/.test(line))).toEqual(
      [],
    );
    expect(run.code).toBe(0);
    const results = readJsonl(output);
    expect(results).toHaveLength(10_000);
    expect(results.map((r) => r.custom_id)).toEqual(lines.map((_, i) => `c${i}`));
    expect(results.every((r) => r.response?.status_code === 200 && r.error === null)).toBe(true);
    expect(results[1]?.response.body.choices[0].message.content.length).toBeGreaterThan(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ lines: 10_000, completed: 10_000, failed: 0, http429: 0 });
    // 2,500 lines on mock:a at 2,500 per second beyond a 2,500 burst... the bound is computed from the limits, not asserted.
    expect(summary.lowerBound.ms).toBeGreaterThan(0);
    expect(summary.utilisation).toBeGreaterThan(0);
    expect(summary.utilisation).toBeLessThanOrEqual(1);
    expect(summary.utilisation).toBeCloseTo(summary.lowerBound.ms / summary.wallMs, 10);
  });

  it('reports each bad line with its number as an error line, and runs the rest', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ id: 'good-1', model: 'mock:m', prompt: 'hello' }),
        '{not json',
        JSON.stringify({ id: 'no-model', prompt: 'hello' }),
        JSON.stringify({ id: 'bad-provider', model: 'nope:m', prompt: 'hello' }),
        '',
        JSON.stringify({ id: 'negative', model: 'mock:m', prompt: 'hello', max_tokens: -5 }),
        JSON.stringify({
          custom_id: 'good-2',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'mock:m', messages: [{ role: 'user', content: 'hi' }] },
        }),
      ].join('\n'),
    );
    const output = join(dir, 'out.jsonl');
    const run = await fanout(['batch', input, '-o', output, '--json']);
    expect(run.code).toBe(1);
    const results = readJsonl(output);
    expect(results.map((r) => [r.custom_id, r.fanout.line, r.error?.code ?? 'ok'])).toEqual([
      ['good-1', 1, 'ok'],
      [null, 2, 'invalid_request'],
      ['no-model', 3, 'invalid_request'],
      ['bad-provider', 4, 'unknown_provider'],
      ['negative', 6, 'invalid_request'],
      ['good-2', 7, 'ok'],
    ]);
    expect(results[1]?.error.message).toMatch(/^line 2: not JSON/);
    expect(results[2]?.error.message).toMatch(/^line 3: model/);
    expect(results[3]?.error.message).toMatch(/^line 4: model: unknown provider "nope"/);
    expect(results[4]?.error.message).toMatch(/^line 6: max_tokens/);
    expect(JSON.parse(run.stdout)).toMatchObject({ lines: 6, completed: 2, failed: 4, invalid: 4 });
  });

  it('refuses a config with a bad field, naming it, and exits 2', async () => {
    const dir = workdir();
    const config = join(dir, 'fanout.yaml');
    writeFileSync(config, 'models:\n  "mock:m": { limits: { requestsPerMinute: -3 } }\n');
    writeFileSync(join(dir, 'in.jsonl'), '{"model":"mock:m","prompt":"x"}\n');
    const run = await fanout(['batch', join(dir, 'in.jsonl'), '-o', join(dir, 'out.jsonl'), '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${config}.models.mock:m.limits.requestsPerMinute`);
    expect(run.stderr).toMatch(/expected number to be >0/);
  });

  it('answers a repeated run of temperature-0 lines from the cache in .fanout/, and not with --no-cache', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 20 }, (_, i) =>
        JSON.stringify({ id: `c${i}`, model: 'mock:m', prompt: `p${i % 10}`, temperature: 0 }),
      ).join('\n'),
    );
    const run = (extra: string[] = []) =>
      fanout(['batch', input, '-o', join(dir, 'out.jsonl'), '--json', ...extra], { cwd: dir });
    const first = JSON.parse((await run()).stdout);
    // 10 distinct prompts: the second of each pair shares the first's call or its stored answer.
    expect(first).toMatchObject({ completed: 20, cacheHits: 10 });
    // The same command again resumes a finished batch: nothing left to do.
    expect(JSON.parse((await run()).stdout)).toMatchObject({ lines: 0, completed: 0, resumed: { written: 20 } });
    const second = JSON.parse((await run(['--fresh'])).stdout);
    expect(second).toMatchObject({ completed: 20, cacheHits: 20, usage: { inputTokens: 0, outputTokens: 0 } });
    expect(readJsonl(join(dir, 'out.jsonl')).every((r) => r.fanout.cache?.source === 'stored')).toBe(true);
    expect(
      readFileSync(join(dir, '.fanout', 'fanout.db'))
        .subarray(0, 15)
        .toString(),
    ).toBe('SQLite format 3');
    const uncached = JSON.parse((await run(['--no-cache', '--fresh'])).stdout);
    expect(uncached).toMatchObject({ completed: 20, cacheHits: 0 });
  });

  it('refuses a store file that is not a database, and leaves it alone', async () => {
    const dir = workdir();
    writeFileSync(join(dir, 'in.jsonl'), '{"model":"mock:m","prompt":"x"}\n');
    writeFileSync(join(dir, 'notes.txt'), 'my notes\n'.repeat(100));
    const run = await fanout(
      ['batch', join(dir, 'in.jsonl'), '-o', join(dir, 'out.jsonl'), '--store', `sqlite:${join(dir, 'notes.txt')}`],
      { cwd: dir },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('notes.txt is not a readable SQLite database');
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('my notes\n'.repeat(100));
  });

  it('says which input file is missing', async () => {
    const dir = workdir();
    const run = await fanout(['batch', join(dir, 'missing.jsonl'), '-o', join(dir, 'out.jsonl')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('missing.jsonl: no such file');
  });

  it('stops cleanly on Ctrl-C, keeps what finished, and the same command resumes the rest', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `c${i}`, model: 'mock:slow', prompt: `p${i}` })).join(
        '\n',
      ),
    );
    const config = join(dir, 'fanout.yaml');
    writeFileSync(
      config,
      'models:\n  "mock:slow": { limits: { requestsPerMinute: 600, burstSeconds: 1 } }\nproviders:\n  mock:\n    models:\n      slow: { latency: 200 }\n',
    );
    const output = join(dir, 'out.jsonl');
    const args = ['batch', input, '-o', output, '--config', config, '--json'];
    let sent = false;
    const run = await fanout(args, {
      cwd: dir,
      onStderr: (text, child) => {
        if (!sent && /\d+\/50 done/.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('run the same command again to resume');
    // The progress line: done of read, rate, time left, and the call in flight longest.
    expect(run.stderr).toMatch(
      /fanout: \d+\/50 done \(0 failed\), [\d,]+\/s, [\d.]+ (ms|s) left, \d+ in flight, \d+ waiting, [\d.]+ s, oldest call [\d.]+ ms/,
    );
    const summary = JSON.parse(run.stdout);
    expect(summary.interrupted).toBe(true);
    expect(summary.completed).toBeGreaterThan(0);
    expect(summary.completed).toBeLessThan(50);
    const partial = readJsonl(output);
    expect(partial.length).toBeLessThanOrEqual(summary.completed);
    // The summary says how many lines reached the file, and its bound counts the calls the stop left in flight.
    expect(summary.written).toBe(partial.length);
    expect(summary.attempts).toBeGreaterThanOrEqual(summary.completed);
    expect(summary.utilisation).toBeLessThanOrEqual(1);
    expect(partial.map((r) => r.custom_id)).toEqual(Array.from({ length: partial.length }, (_, i) => `c${i}`));
    expect(partial.every((r) => r.error === null)).toBe(true);

    const again = await fanout(args, { cwd: dir });
    expect(again.code).toBe(0);
    const rest = JSON.parse(again.stdout);
    expect(rest.resumed.written).toBe(partial.length);
    expect(rest.resumed.written + rest.completed).toBe(50);
    expect(rest.utilisation).toBeLessThanOrEqual(1);
    expect(again.stderr).not.toContain('still running');
    const results = readJsonl(output);
    expect(results.map((r) => r.custom_id)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
    expect(results.every((r) => r.error === null)).toBe(true);
  });

  it('drops a last line cut short by a crash, and refuses to continue a file that is not fanout output', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `c${i}`, model: 'mock:m', prompt: `p${i}` })).join('\n'),
    );
    const output = join(dir, 'out.jsonl');
    await fanout(['batch', input, '-o', output, '--store', 'memory'], { cwd: dir });
    const full = readFileSync(output, 'utf8').split('\n');
    writeFileSync(output, `${full.slice(0, 2).join('\n')}\n${full[2]!.slice(0, 40)}`);
    const resumed = await fanout(['batch', input, '-o', output, '--store', 'memory', '--json'], { cwd: dir });
    expect(JSON.parse(resumed.stdout)).toMatchObject({ completed: 3, resumed: { written: 2 } });
    expect(readJsonl(output).map((r) => r.custom_id)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);

    const notOurs = join(dir, 'notes.jsonl');
    writeFileSync(notOurs, '{"my":"data"}\n');
    const refused = await fanout(['batch', input, '-o', notOurs, '--store', 'memory'], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('line 1 is not a fanout result line');
    expect(readFileSync(notOurs, 'utf8')).toBe('{"my":"data"}\n');
  });
});

describe('fanout batch never destroys its input', () => {
  it('refuses its input file as the output, --fresh or not, however the path is spelt, and leaves it as it was', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    const text = `${JSON.stringify({ model: 'mock:m', prompt: 'keep me' })}\n`;
    writeFileSync(input, text);
    for (const args of [
      ['in.jsonl', '-o', 'in.jsonl'],
      ['in.jsonl', '-o', 'in.jsonl', '--fresh'],
      ['in.jsonl', '-o', `../${dir.split('/').pop()}/in.jsonl`, '--fresh', '--store', 'memory'],
    ]) {
      const run = await fanout(['batch', ...args], { cwd: dir });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('that is the input file; fanout never writes over its input');
      expect(readFileSync(input, 'utf8')).toBe(text);
    }
  });

  it('says up front, and when stopped, that a batch from standard input or in memory cannot fully resume', async () => {
    const { dir, run } = await slowBatchStoppedBy('SIGINT', ['--store', 'memory']);
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(
      /^fanout batch: this batch cannot fully resume after an interruption: its tasks are kept in memory/,
    );
    expect(run.stderr).not.toContain('run the same command again to resume');
    expect(run.stdout).toContain('stopped by Ctrl-C: what finished is kept; this batch cannot fully resume');
    const fromStdin = await new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [bin, 'batch', '-', '-o', join(dir, 'stdin.jsonl')], {
        cwd: dir,
        env: { ...process.env, FANOUT_CONFIG: '' },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (code) => resolve({ code, stdout: '', stderr }));
      child.stdin.end(`${JSON.stringify({ model: 'mock:m', prompt: 'x' })}\n`);
    });
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stderr).toContain('this batch cannot fully resume after an interruption: it reads standard input');
  });

  it('writes its lines to standard output for -o -, and the summary to standard error', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      `${JSON.stringify({ id: 'a', model: 'mock:m', prompt: 'x' })}\n${JSON.stringify({ id: 'b', model: 'mock:m', prompt: 'y' })}\n`,
    );
    const run = await fanout(['batch', input, '-o', '-', '--store', 'memory'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(
      run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).custom_id),
    ).toEqual(['a', 'b']);
    expect(run.stderr).toContain('2 lines from');
    expect(run.stderr).toContain('→ standard output');
    expect(() => readFileSync(join(dir, '-'))).toThrow();
  });

  it('asks "did you mean" for a model one typo away from a configured one, and names the key a missing provider needs', async () => {
    const dir = workdir();
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 3 }, (_, i) => JSON.stringify({ model: 'mock:reviwer', prompt: `p${i}` })).join('\n'),
    );
    const config = join(dir, 'fanout.yaml');
    writeFileSync(config, 'models:\n  "mock:reviewer": { limits: { requestsPerMinute: 60 } }\n');
    const run = await fanout(['batch', input, '-o', join(dir, 'out.jsonl'), '--config', config, '--no-progress'], {
      cwd: dir,
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('fanout: mock:reviwer has no limits configured; did you mean mock:reviewer?\n');
    writeFileSync(input, JSON.stringify({ model: 'openai:gpt-4o-mini', prompt: 'x' }));
    const keyless = await new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [bin, 'batch', input, '-o', join(dir, 'out2.jsonl'), '--no-progress'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', FANOUT_CONFIG: '' },
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(readJsonl(join(dir, 'out2.jsonl'))[0]?.error.message).toContain(
      'To use openai, set OPENAI_API_KEY in the environment',
    );
    expect(keyless.code).toBe(1);
  });

  it('ends with its summary on SIGTERM too, and exits 143', async () => {
    const { run } = await slowBatchStoppedBy('SIGTERM');
    expect(run.code).toBe(143);
    expect(run.stdout).toMatch(/^fanout batch: 30 lines from .* \(interrupted\)\n/);
    expect(run.stdout).toContain('stopped by SIGTERM: what finished is kept; run the same command again to resume');
  });
});
