import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { FanoutError } from '../contracts/errors.js';
import { registerBatchCommand } from './batch-command.js';
import { registerPipelineCommands } from './pipeline-commands.js';
import { registerServeCommand } from './serve-command.js';
import { registerWorkerCommand } from './worker-command.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

/**
 * The `fanout` command. Reads the environment (FANOUT_CONFIG) and files;
 * everything else lives in the library.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command()
    .name('fanout')
    .description("Run many LLM calls at once, as fast as the providers' rate limits allow and never faster.")
    .version(packageVersion(), '-V, --version', "print fanout's version")
    .exitOverride()
    // A usage error is the error and commander's "did you mean", then one hint: not the whole help.
    .showHelpAfterError('(fanout <command> --help lists the options)');
  const setExitCode = (code: number): void => {
    exitCode = code;
  };
  registerBatchCommand(program, setExitCode);
  registerPipelineCommands(program, setExitCode);
  registerServeCommand(program);
  registerWorkerCommand(program);
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof FanoutError) {
      process.stderr.write(`fanout: ${error.message}\n`);
      return exitCodeFor(error);
    }
    throw error;
  }
  return exitCode;
}

/** The version in fanout's own package.json. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}
