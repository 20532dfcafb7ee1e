import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { engineOptionsFromConfig } from '../config/engine-options.js';
import { FanoutError } from '../contracts/errors.js';
import { createEngine } from '../create-engine.js';
import { loadPipelineFile, type PipelineFile } from '../pipeline/load.js';
import { runPipeline, type PipelineRun, type StepResult, type ToolFunction } from '../pipeline/run.js';
import type { Pipeline } from '../pipeline/spec.js';
import { renderMermaid, renderSvg, seconds as formatSeconds } from '../sim/charts.js';
import { renderGantt } from '../sim/gantt.js';
import { simulate, type Simulation } from '../sim/simulate.js';
import { fromData, loadConfig } from './config-file.js';
import { loadTools } from './tools-module.js';
import { EXIT } from './exit-codes.js';
import { formatCount, unconfiguredNotice } from './format.js';

interface PipelineFlags {
  tools?: string;
  pipeline?: string;
  svg?: string;
  mermaid?: boolean;
  input: string[];
  json?: boolean;
  width?: string;
  config?: string;
  progress?: boolean;
}

/** `name=value`, or `name=@file` for a file's text. */
function parseInputs(pairs: readonly string[]): Record<string, string> {
  const inputs: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new FanoutError('invalid_config', `--input: expected name=value or name=@file, received "${pair}"`);
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (value.startsWith('@')) {
      try {
        inputs[name] = readFileSync(value.slice(1), 'utf8');
      } catch {
        throw new FanoutError('invalid_config', `--input ${name}: cannot read ${value.slice(1)}`);
      }
    } else {
      inputs[name] = value;
    }
  }
  return inputs;
}

function chosen(file: PipelineFile, name: string | undefined): Pipeline[] {
  if (name === undefined) return file.pipelines;
  const found = file.pipelines.find((p) => p.name === name);
  if (!found)
    throw new FanoutError(
      'invalid_config',
      `--pipeline: ${file.path} has no pipeline "${name}"; it has ${file.pipelines.map((p) => p.name).join(', ')}`,
    );
  return [found];
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

export function registerPipelineCommands(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('simulate')
    .description(
      'run a pipeline file in virtual time on the mock models: predicted wall time, critical path, speedup over a sequential run, and a gantt chart; nothing is spent',
    )
    .argument('<file>', 'pipeline file (YAML)')
    .option('--pipeline <name>', 'only this pipeline of the file')
    .option('--input <name=value>', 'an input value, or name=@file for a file (repeatable)', collect, [])
    .option('--width <n>', 'gantt width in characters', '60')
    .option(
      '--svg <file>',
      'also write the gantt chart as SVG (one file per pipeline: NAME inserted before the extension when there are several)',
    )
    .option('--mermaid', 'print the gantt chart as a Mermaid block instead of text')
    .option('--json', 'print the simulation as JSON')
    .action(async (path: string, flags: PipelineFlags) => {
      const file = loadPipelineFile(path, (data, source) => fromData(data, source));
      const inputs = parseInputs(flags.input);
      const results: Simulation[] = [];
      for (const pipeline of chosen(file, flags.pipeline))
        results.push(await simulate(pipeline, { config: file.config, inputs }));
      writeCharts(
        results.map((r) => r.run),
        flags,
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      } else {
        process.stdout.write(renderSimulations(file, results, Number(flags.width) || 60, flags.mermaid === true));
      }
      setExitCode(results.every((r) => r.run.ok) ? EXIT.ok : EXIT.someFailed);
    });

  program
    .command('run')
    .description("run a pipeline file for real: every step's output, usage and a timeline of its calls")
    .argument('<file>', 'pipeline file (YAML)')
    .option('--pipeline <name>', 'the pipeline to run, when the file has several')
    .option('--input <name=value>', 'an input value, or name=@file for a file (repeatable)', collect, [])
    .option(
      '-c, --config <file>',
      "fanout.yaml with models and limits (default: the file's own config, else $FANOUT_CONFIG)",
    )
    .option('--tools <module>', "a JavaScript module whose named exports are the tool steps' functions")
    .option('--width <n>', 'gantt width in characters', '60')
    .option('--svg <file>', 'also write the gantt chart as SVG')
    .option('--mermaid', 'print the gantt chart as a Mermaid block instead of text')
    .option('--json', 'print the run as JSON')
    .option('--no-progress', 'no line on stderr as each step starts and ends')
    .action(async (path: string, flags: PipelineFlags) => {
      const file = loadPipelineFile(path, (data, source) => fromData(data, source));
      const pipelines = chosen(file, flags.pipeline);
      if (pipelines.length !== 1) {
        throw new FanoutError(
          'invalid_config',
          `--pipeline: ${path} has ${pipelines.length} pipelines (${pipelines.map((p) => p.name).join(', ')}); name the one to run`,
        );
      }
      const config =
        flags.config !== undefined || process.env.FANOUT_CONFIG ? await loadConfig(flags.config) : file.config;
      const engine = createEngine(engineOptionsFromConfig(config));
      engine.on('model-unconfigured', (event) => process.stderr.write(unconfiguredNotice(event.key as string, event)));
      let run: PipelineRun;
      try {
        const startedAt = engine.clock.now();
        const since = (): string => formatSeconds(engine.clock.now() - startedAt);
        const progress =
          flags.progress === false
            ? {}
            : {
                onStepStart: (step: string) => process.stderr.write(`fanout run: ${since()} ${step} started\n`),
                onStepEnd: (step: StepResult) =>
                  process.stderr.write(
                    `fanout run: ${since()} ${step.name} ${step.state}${step.startedAt === undefined ? '' : ` after ${formatSeconds((step.endedAt ?? step.startedAt) - step.startedAt)}`}${step.error ? ` (${step.error.code}: ${step.error.message})` : ''}\n`,
                  ),
              };
        run = await runPipeline(engine, pipelines[0] as Pipeline, {
          inputs: parseInputs(flags.input),
          tools: await loadTools(flags.tools),
          ...progress,
        });
      } finally {
        await engine.close();
      }
      writeCharts([run], flags);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(run, null, 2)}\n`
          : renderRun(run, Number(flags.width) || 60, flags.mermaid === true),
      );
      setExitCode(run.ok ? EXIT.ok : EXIT.someFailed);
    });
}

/** Dollars, with the models left out named when some had no price. */
function formatCost(run: PipelineRun): string {
  const dollars = `$${run.costUsd.toFixed(run.costUsd < 1 ? 4 : 2)}`;
  return run.unpricedModels.length === 0 ? dollars : `${dollars} (no price: ${run.unpricedModels.join(', ')})`;
}

function writeCharts(runs: PipelineRun[], flags: PipelineFlags): void {
  if (!flags.svg) return;
  for (const run of runs) {
    const path = runs.length === 1 ? flags.svg : flags.svg.replace(/(\.svg)?$/i, `-${run.pipeline}.svg`);
    try {
      writeFileSync(path, renderSvg(run));
    } catch (error) {
      throw new FanoutError(
        'io_error',
        `--svg ${path}: cannot be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
  }
}

function chart(run: PipelineRun, width: number, mermaid: boolean): string {
  return mermaid ? `\`\`\`mermaid\n${renderMermaid(run)}\`\`\`` : renderGantt(run, { width });
}

function renderSimulations(file: PipelineFile, results: Simulation[], width: number, mermaid: boolean): string {
  const lines = [`${file.path}: simulated on the mock models' latencies, nothing spent`, ''];
  const header = [
    'pipeline',
    'calls',
    'sequential',
    'parallel',
    'speedup',
    'tokens in/out',
    'cost',
    'critical path',
    'waits for limits',
  ];
  const rows = results.map((r) => [
    r.run.pipeline,
    String(r.run.calls.length),
    seconds(r.sequentialMs),
    seconds(r.run.wallMs),
    `${r.speedup.toFixed(1)}×`,
    `${formatCount(r.run.usage.inputTokens)}/${formatCount(r.run.usage.outputTokens)}`,
    formatCost(r.run),
    r.criticalPath.join(' → '),
    r.limitWaits.length === 0
      ? 'none'
      : `${r.limitWaits.length} calls, up to ${seconds(Math.max(...r.limitWaits.map((w) => w.waitMs)))}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const format = (cells: string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  lines.push(format(header), format(widths.map((w) => '─'.repeat(w))), ...rows.map(format));
  for (const r of results) {
    lines.push(
      '',
      `${r.run.pipeline}: ${seconds(r.sequentialMs)} one after another → ${seconds(r.run.wallMs)} in parallel (${r.speedup.toFixed(1)}×)${r.run.ok ? '' : ' — FAILED'}`,
    );
    if (r.run.tools.length > 0 && r.calls.wallMs > 0) {
      lines.push(
        `  model calls alone: ${seconds(r.calls.sequentialMs)} one after another → ${seconds(r.calls.wallMs)} in parallel (${(r.calls.sequentialMs / r.calls.wallMs).toFixed(1)}×)`,
      );
    }
    lines.push(chart(r.run, width, mermaid));
    if (r.limitWaits.length > 0) {
      lines.push(
        `  rate limits hold back: ${r.limitWaits.map((w) => `${w.step}${w.item === undefined ? '' : `[${w.item}]`} ${seconds(w.waitMs)}`).join(', ')}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

function renderRun(run: PipelineRun, width: number, mermaid: boolean): string {
  const lines = [
    `${run.pipeline}: ${run.ok ? 'completed' : 'FAILED'} in ${seconds(run.wallMs)}, tokens in ${formatCount(run.usage.inputTokens)} / out ${formatCount(run.usage.outputTokens)}, cost ${formatCost(run)}`,
    '',
  ];
  for (const step of Object.values(run.steps)) {
    const output = Array.isArray(step.output)
      ? `${step.output.length} items`
      : step.output.replace(/\s+/g, ' ').slice(0, 100);
    lines.push(`  ${step.name.padEnd(16)} ${step.state.padEnd(9)} ${output}`);
  }
  lines.push('', chart(run, width, mermaid));
  return `${lines.join('\n')}\n`;
}
