import { FanoutError } from '../contracts/errors.js';

/** Exit codes of the `fanout` command, in one place. */
export const EXIT = {
  ok: 0,
  /** The run finished, but some tasks failed. */
  someFailed: 1,
  /** Bad usage, flags, config or input file. */
  usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + SIGTERM), after writing what finished and the summary. */
  terminated: 143,
  /** A file could not be read or written (EX_IOERR). */
  io: 74,
  /** A bug or an unexpected failure. */
  internal: 70,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof FanoutError) {
    if (error.code === 'io_error') return EXIT.io;
    return error.code === 'invalid_config' || error.code === 'invalid_request' || error.code === 'unknown_provider'
      ? EXIT.usage
      : EXIT.internal;
  }
  return EXIT.internal;
}
