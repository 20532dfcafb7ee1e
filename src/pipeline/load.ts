import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type FanoutConfig } from '../config/schema.js';
import { describeIssues, FanoutError, ValidationError } from '../contracts/errors.js';
import { checkPipeline, pipelineFileSchema, type Pipeline } from './spec.js';

export interface PipelineFile {
  path: string;
  config: FanoutConfig;
  /** In file order. */
  pipelines: Pipeline[];
}

/**
 * Reads a pipeline file (YAML or JSON): one pipeline (`steps`) or several
 * (`pipelines`), and an optional `config` (models, limits, the mock's
 * latencies). Input defaults given as `defaultFile` are read relative to the
 * file. Every pipeline is checked; errors name the pipeline, step and field.
 */
export function loadPipelineFile(
  path: string,
  prepareConfig: (data: unknown, source: string) => FanoutConfig = parseConfig,
): PipelineFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FanoutError(
      'invalid_config',
      `pipeline file ${path}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
    );
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new FanoutError(
      'invalid_config',
      `pipeline file ${path}: not valid YAML: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  // The config is checked by `prepareConfig` (which may first fill in environment variables).
  const { config: rawConfig, ...rest } = (data ?? {}) as { config?: unknown };
  const parsed = pipelineFileSchema.safeParse(rest);
  if (!parsed.success) throw new ValidationError('invalid_config', describeIssues(parsed.error, path));
  const file = parsed.data;
  const config = prepareConfig(rawConfig ?? {}, `${path}.config`);
  const specs =
    'pipelines' in file
      ? Object.entries(file.pipelines)
      : [[(file as { name?: string }).name ?? 'pipeline', file] as const];
  const pipelines = specs.map(([name, spec]) => {
    const { config: _config, ...pipelineSpec } = spec as typeof spec & { config?: unknown };
    const inputs = pipelineSpec.inputs;
    if (inputs && !Array.isArray(inputs)) {
      for (const input of Object.values(inputs)) {
        if (input.defaultFile !== undefined && input.default === undefined) {
          const file = resolve(dirname(path), input.defaultFile);
          try {
            input.default = readFileSync(file, 'utf8');
          } catch {
            throw new FanoutError(
              'invalid_config',
              `${path}: ${name}: input default file ${input.defaultFile} cannot be read`,
            );
          }
        }
      }
    }
    return checkPipeline(pipelineSpec, pipelineSpec.name ?? name);
  });
  return { path, config, pipelines };
}
