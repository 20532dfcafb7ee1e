import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, type TaskRequest } from '../dist/index.js';
import { SqliteTaskStore } from '../dist/store/sqlite/sqlite-task-store.js';
import { median, nowMs } from './stats.js';

/**
 * T-sqlite: the T-sched workload (zero-latency mock, 256 in flight, requests
 * built in the timed region) with every task kept in a SQLite file (WAL,
 * grouped commits), against the same engine keeping tasks in memory only.
 */
export interface SqliteResult {
  tasks: number;
  sqlite: number;
  memory: number;
  rows: number;
}

function request(i: number): TaskRequest {
  return { model: 'mock:bench', messages: [{ role: 'user', content: `prompt number ${i}` }], maxTokens: 64 };
}

async function run(n: number, durable: boolean): Promise<{ rate: number; rows: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-bench-'));
  const store = durable ? new SqliteTaskStore(join(dir, 'fanout.db')) : undefined;
  const engine = createEngine({
    concurrency: 256,
    store,
    cache: false,
    models: { 'mock:bench': { limits: { requestsPerMinute: 1e12 } } },
  });
  const start = nowMs();
  const requests = Array.from({ length: n }, (_, i) => request(i));
  const outcomes = await engine.gather(requests);
  // Durable means in the file: the time includes the last commit.
  await engine.flush();
  const rate = n / ((nowMs() - start) / 1000);
  if (outcomes.some((o) => !o.ok)) throw new Error('a task failed');
  const rows = store
    ? (store.db.prepare("SELECT count(*) AS n FROM tasks WHERE state = 'completed'").get() as { n: number }).n
    : n;
  await engine.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
  return { rate, rows };
}

export async function benchSqlite(tasks = 100_000, repeats = 3): Promise<SqliteResult> {
  await run(5000, true);
  await run(5000, false);
  const sqlite: number[] = [];
  const memory: number[] = [];
  let rows = 0;
  for (let r = 0; r < repeats; r++) {
    const durable = await run(tasks, true);
    rows = durable.rows;
    sqlite.push(durable.rate);
    memory.push((await run(tasks, false)).rate);
  }
  if (rows !== tasks) throw new Error(`only ${rows} of ${tasks} completed tasks are in the file`);
  return { tasks, sqlite: median(sqlite), memory: median(memory), rows };
}
