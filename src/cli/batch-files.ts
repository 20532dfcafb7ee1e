import { createHash } from 'node:crypto';
import { createReadStream, realpathSync, type ReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FanoutError } from '../contracts/errors.js';

/** Opens the input (a file, or standard input for `-`), failing early with the file named. */
export async function openInput(input: string): Promise<NodeJS.ReadableStream> {
  if (input === '-') return process.stdin;
  const stream: ReadStream = createReadStream(input);
  await new Promise<void>((done, fail) => {
    stream.once('ready', () => done());
    stream.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        new FanoutError(
          'invalid_config',
          `input file ${input}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`,
        ),
      ),
    );
  });
  return stream;
}

/**
 * Refuses an output that is the input file itself (however it is spelt: a
 * relative path, a link): writing it would destroy the input, and `--fresh`
 * does not change that.
 */
export function refuseInputAsOutput(input: string, output: string): void {
  if (input === '-' || output === '-') return;
  let same: boolean;
  try {
    same = realpathSync(input) === realpathSync(output);
  } catch {
    // The output does not exist yet (or the input cannot be read, which openInput reports): they differ.
    same = false;
  }
  if (same)
    throw new FanoutError(
      'invalid_config',
      `-o ${output}: that is the input file; fanout never writes over its input, so choose another output file`,
    );
}

/** The same input file and output file always name the same batch in the task store. */
export function batchIdFor(input: string, output: string): string | undefined {
  if (input === '-') return undefined;
  return createHash('sha256')
    .update(realpathSync(input))
    .update('\u0000')
    .update(resolve(output))
    .digest('hex')
    .slice(0, 32);
}

export interface OutputFile {
  handle: FileHandle;
  /** Complete lines already in the file (kept), each answering one input line, from the top. */
  written: number;
  /** Where writing continues. */
  position: number;
}

function cannotWrite(path: string, error: unknown): FanoutError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new FanoutError('io_error', `output file ${path}: cannot be written (${reason})`, { cause: error });
}

/**
 * Opens the output to continue it: the complete lines an earlier run wrote
 * are kept, a last line cut short by a crash is dropped. `fresh` starts it over.
 * A file whose lines are not fanout output is refused, not overwritten.
 */
export async function openOutput(path: string, fresh: boolean): Promise<OutputFile> {
  if (!fresh) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotWrite(path, error);
    }
    if (handle) {
      const text = (await handle.readFile()).toString('utf8');
      const keep = text.lastIndexOf('\n') + 1;
      const lines = text.slice(0, keep).split('\n').slice(0, -1);
      for (const [index, line] of lines.entries()) {
        if (!isOutputLine(line)) {
          await handle.close();
          throw new FanoutError(
            'invalid_config',
            `output file ${path}: line ${index + 1} is not a fanout result line, so the file cannot be continued; pass --fresh to overwrite it, or choose another -o`,
          );
        }
      }
      await handle.truncate(Buffer.byteLength(text.slice(0, keep)));
      return { handle, written: lines.length, position: Buffer.byteLength(text.slice(0, keep)) };
    }
  }
  try {
    return { handle: await open(path, 'w'), written: 0, position: 0 };
  } catch (error) {
    throw cannotWrite(path, error);
  }
}

function isOutputLine(line: string): boolean {
  try {
    const parsed = JSON.parse(line) as { fanout?: { line?: unknown } };
    return typeof parsed.fanout?.line === 'number';
  } catch {
    return false;
  }
}
