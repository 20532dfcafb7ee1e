import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { createEngine, MockProvider, SystemClock, type TaskRequest } from '../dist/index.js';
import { gc } from './stats.js';

/**
 * M-queue: heap per queued task with 100,000 queued. fanout's tasks wait on a
 * 1-request-per-minute key; p-queue's wait behind one call that never ends.
 * Both hold the same request objects, built the same way, so the figure is
 * each system's own bookkeeping plus the request it must keep.
 */
export interface MemoryResult {
  tasks: number;
  fanoutBytesPerTask: number;
  pQueueBytesPerTask: number;
  requestBytesPerTask: number;
  /** RSS of a plain node process holding the queued tasks. */
  fanoutRssMb: number;
  /** RSS of that process before the tasks were made. */
  baselineRssMb: number;
}

function makeRequest(i: number): TaskRequest {
  return { model: 'mock:slow', messages: [{ role: 'user', content: `queued prompt ${i}` }], maxTokens: 64 };
}

function heap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

export async function benchMemory(tasks = 100_000): Promise<MemoryResult> {
  // fanout first, so its RSS is not inflated by what the anchors allocate.
  let base = heap();
  const engine = createEngine({ models: { 'mock:slow': { limits: { requestsPerMinute: 1 } } } });
  for (let i = 0; i < tasks; i++) engine.submit(makeRequest(i));
  await new Promise((resolve) => setImmediate(resolve));
  const fanoutBytes = (heap() - base) / tasks;
  if (engine.pendingCount < tasks - 1) throw new Error('fanout: tasks were not held');
  await engine.close();

  base = heap();
  const queue = new PQueue({ concurrency: 1 });
  const mock = new MockProvider();
  const clock = new SystemClock();
  const never = new Promise<void>(() => undefined);
  void queue.add(() => never);
  for (let i = 0; i < tasks; i++) {
    const request = makeRequest(i);
    void queue.add(() =>
      mock.complete(
        { ...request, model: 'slow', maxTokens: 64 },
        { signal: new AbortController().signal, attempt: 1, clock },
      ),
    );
  }
  const pQueueBytes = (heap() - base) / tasks;
  if (queue.size < tasks) throw new Error('p-queue: tasks were not held');
  queue.clear();

  // The requests alone, as the caller would hold them.
  base = heap();
  const requests: TaskRequest[] = Array.from({ length: tasks }, (_, i) => makeRequest(i));
  const requestBytes = (heap() - base) / tasks;
  if (requests.length !== tasks) throw new Error('unreachable');
  // RSS in a plain node process, without this process's TypeScript loader and anchors.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(new URL('./queued-rss.mjs', import.meta.url)), String(tasks)],
    { encoding: 'utf8' },
  );
  if (child.status !== 0) throw new Error(`queued-rss.mjs failed: ${child.stderr}`);
  const rss = JSON.parse(child.stdout) as { beforeMb: number; afterMb: number };
  return {
    tasks,
    fanoutBytesPerTask: fanoutBytes,
    pQueueBytesPerTask: pQueueBytes,
    requestBytesPerTask: requestBytes,
    fanoutRssMb: rss.afterMb,
    baselineRssMb: rss.beforeMb,
  };
}
