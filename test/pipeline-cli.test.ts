import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const fanout = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/fanout.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, FANOUT_CONFIG: '' },
  });

describe('fanout simulate and fanout run', () => {
  it('prints the seed’s comparison and a gantt chart for examples/pr-review.yaml', () => {
    const run = fanout(['simulate', 'examples/pr-review.yaml']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('three-agents: 120 s one after another → 45 s in parallel (2.7×)');
    expect(run.stdout).toContain('four-chunks: 120 s one after another → 35 s in parallel (3.4×)');
    expect(run.stdout).toContain('ensemble: 75 s one after another → 45 s in parallel (1.7×)');
    expect(run.stdout).toContain('single-agent: 30 s one after another → 30 s in parallel (1.0×)');
    // The 45 s architect call fills the chart; the 30 s code-quality call two thirds of it.
    expect(run.stdout).toMatch(/architect mock:architect +│█{60}│ 45 s/);
    expect(run.stdout).toMatch(/code-quality mock:code-quality +│█{40} {20}│ 30 s/);
  });

  it('runs a pipeline for real on the mock, with inputs from the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-run-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(
      file,
      [
        'config:',
        '  providers: { mock: { models: { fast: { latency: 50 } } } }',
        'inputs: [topic]',
        'steps:',
        '  a: { model: "mock:fast", prompt: "About {{ inputs.topic }}" }',
        '  b: { model: "mock:fast", prompt: "Also {{ inputs.topic }}" }',
        '  both: { model: "mock:fast", prompt: "{{ steps.a.output }} / {{ steps.b.output }}" }',
      ].join('\n'),
    );
    const run = fanout(['run', file, '--input', 'topic=caching', '--json']);
    // Each step as it starts and ends, in order: a and b at once, both after them.
    const progress = run.stderr
      .trim()
      .split('\n')
      .map((line) => line.replace(/^fanout run: [\d.]+ s /, '').replace(/ after [\d.]+ s$/, ''));
    expect(progress.slice(0, 2).sort()).toEqual(['a started', 'b started']);
    expect(progress.slice(-2)).toEqual(['both started', 'both completed']);
    expect(progress.sort()).toEqual([
      'a completed',
      'a started',
      'b completed',
      'b started',
      'both completed',
      'both started',
    ]);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.ok).toBe(true);
    expect(Object.keys(result.steps)).toEqual(['a', 'b', 'both']);
    expect(result.calls).toHaveLength(3);
    const missing = fanout(['run', file]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('inputs.topic: required (pass --input topic=VALUE or --input topic=@FILE)');
  });

  it('names the step and field of a bad pipeline file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-run-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'steps:\n  a: { model: "mock:m", prompt: "{{ steps.b.output }}" }\n  b: { model: "mock:m", prompt: "{{ steps.a.output }}" }\n',
    );
    const run = fanout(['simulate', file]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('steps.a: dependency cycle a → b → a');
  });
});

describe('tools', () => {
  it('runs the architecture assistant with its tools from a module', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-tools-'));
    const fast = join(dir, 'fast.yaml');
    writeFileSync(fast, 'providers:\n  mock:\n    defaults: { latency: 20 }\n');
    const run = fanout([
      'run',
      'examples/architecture-assistant.yaml',
      '--config',
      fast,
      '--tools',
      'examples/architecture-tools.mjs',
      '--json',
      '--no-progress',
    ]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.steps['validate-template'].output).toBe('template: ok');
    expect(result.steps.diagram.output).toMatch(/^digraph architecture \{/);
    expect(result.tools.map((t: { step: string }) => t.step).sort()).toEqual(['diagram', 'validate-template']);
  });
});

describe('charts', () => {
  it('writes a well-formed SVG with one bar per call and prints a Mermaid gantt', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-svg-'));
    const svg = join(dir, 'chart.svg');
    const run = fanout(['simulate', 'examples/pr-review.yaml', '--pipeline', 'four-chunks', '--svg', svg, '--mermaid']);
    expect(run.status).toBe(0);
    const text = readFileSync(svg, 'utf8');
    expect(XMLValidator.validate(text)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(text) as {
      svg: { rect: Array<{ '@_width': string }> };
    };
    // Four chunk reviews of 35, 30, 30 and 25 s on a 620-pixel axis of 35 s.
    expect(doc.svg.rect.map((r) => Math.round(Number(r['@_width'])))).toEqual([620, 531, 531, 443]);
    expect(run.stdout).toContain('```mermaid\ngantt\n    title four-chunks: 35 s');
    expect(run.stdout).toContain('review[0] mock chunk-reviewer :b0, 0, 35000');
  });

  it('names an unknown input in one line and exits 2, in simulate as in run', () => {
    for (const command of ['simulate', 'run']) {
      const run = fanout([command, 'examples/pr-review.yaml', '--pipeline', 'three-agents', '--input', 'nosuch=x']);
      expect([command, run.status]).toEqual([command, 2]);
      expect(run.stderr).toBe('fanout: three-agents: inputs.nosuch: the pipeline declares no such input\n');
    }
  });

  it('prints its version', () => {
    const run = fanout(['--version']);
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(
      (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version,
    );
  });

  it('answers a misspelt option or command with the error, a "did you mean" and one hint, exit 2', () => {
    const option = fanout(['batch', 'in.jsonl', '-o', 'out.jsonl', '--frsh']);
    expect(option.status).toBe(2);
    expect(option.stderr).toBe(
      "error: unknown option '--frsh'\n(Did you mean --fresh?)\n(fanout <command> --help lists the options)\n",
    );
    const command = fanout(['bach']);
    expect(command.status).toBe(2);
    expect(command.stderr).toBe(
      "error: unknown command 'bach'\n(Did you mean batch?)\n(fanout <command> --help lists the options)\n",
    );
  });
});
