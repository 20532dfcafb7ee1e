import { spawn, type ChildProcess } from 'node:child_process';

const bin = new URL('../../bin/fanout.js', import.meta.url).pathname;

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves once the worker says it is running tasks; rejects if it exits first. */
  ready: Promise<void>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `fanout worker` (this checkout's) in `cwd` with `args` after `worker`. */
export function startWorker(cwd: string, args: string[]): WorkerProcess {
  const child = spawn(process.execPath, [bin, 'worker', ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let said = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('fanout worker: running tasks')) resolve();
    });
    void exited.then((code) => reject(new Error(`fanout worker exited ${code}: ${said}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
