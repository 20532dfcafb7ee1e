import { hostname } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import { FanoutError } from '../../contracts/errors.js';
import { releaseLostAttempt } from '../memory/memory-task-store.js';
import type { StoredRecord, TaskRow, TaskStore, WriteOutcome } from '../../contracts/task-store.js';
import { describeSqliteError, openDatabase } from './database.js';

interface DbRow {
  id: string;
  seq: number;
  batch_id: string | null;
  line: number | null;
  limit_key: string;
  request: string;
  state: string;
  submitted_at: number;
  ready_at: number;
  ended_at: number | null;
  attempts: string;
  queued_ms: number;
  rate_limited_ms: number;
  provider_ms: number;
  lease_attempt: string | null;
  lease_until: number | null;
  result: string | null;
  error: string | null;
}

const COLUMNS =
  'id, seq, batch_id, line, limit_key, request, state, submitted_at, ready_at, ended_at, attempts, queued_ms, rate_limited_ms, provider_ms, lease_attempt, lease_until, result, error';

interface RecordRow {
  id: string;
  kind: string;
  tenant: string;
  created_at: number;
  state: string;
  data: string;
}

function recordFromDb(row: RecordRow): StoredRecord {
  return {
    id: row.id,
    kind: row.kind as StoredRecord['kind'],
    tenant: row.tenant,
    createdAt: row.created_at,
    state: row.state,
    data: JSON.parse(row.data),
  };
}

function fromDb(row: DbRow): TaskRow {
  const task: TaskRow = {
    id: row.id,
    seq: row.seq,
    key: row.limit_key,
    request: JSON.parse(row.request),
    state: row.state as TaskRow['state'],
    submittedAt: row.submitted_at,
    readyAt: row.ready_at,
    attempts: JSON.parse(row.attempts),
    queuedMs: row.queued_ms,
    rateLimitedMs: row.rate_limited_ms,
    providerMs: row.provider_ms,
  };
  if (row.batch_id !== null) task.batchId = row.batch_id;
  if (row.line !== null) task.line = row.line;
  if (row.ended_at !== null) task.endedAt = row.ended_at;
  if (row.lease_attempt !== null) task.leaseAttempt = row.lease_attempt;
  if (row.lease_until !== null) task.leaseUntil = row.lease_until;
  if (row.result !== null) task.result = JSON.parse(row.result);
  if (row.error !== null) task.error = JSON.parse(row.error);
  return task;
}

export interface SqliteTaskStoreOptions {
  /**
   * Take the database for this process: refuse to open it while another live
   * process on this machine has it. Default true.
   */
  exclusive?: boolean;
}

/**
 * Tasks in a SQLite file (WAL). `write` applies a whole batch of rows in one
 * transaction, so the engine groups the changes of many tasks into one
 * commit. The guards of the `TaskStore` contract live in the SQL: an ended
 * row is never updated, and a processing row under another attempt's live
 * lease is left alone.
 */
export class SqliteTaskStore implements TaskStore {
  readonly db: BetterSqlite3.Database;
  private readonly path: string;
  private readonly upsert: BetterSqlite3.Statement;
  private readonly selectStored: BetterSqlite3.Statement<
    [string],
    { state: string; lease_attempt: string | null; lease_until: number | null }
  >;
  private readonly selectOne: BetterSqlite3.Statement<[string], DbRow>;
  private readonly selectBatch: BetterSqlite3.Statement<[string], DbRow>;
  private readonly selectOpen: BetterSqlite3.Statement<[], DbRow>;
  private readonly writeRows: (rows: readonly TaskRow[], now: number) => WriteOutcome;
  private closed = false;
  /** A task's request never changes: it is turned into JSON once, however often its row is written. */
  private readonly requestJson = new WeakMap<object, string>();

  constructor(path: string, options: SqliteTaskStoreOptions = {}) {
    this.path = path;
    this.db = openDatabase(path);
    try {
      if (options.exclusive !== false) this.takeOver();
      this.upsert = this.db.prepare(`
        INSERT INTO tasks (${COLUMNS}, completions)
        VALUES (@id, @seq, @batch_id, @line, @limit_key, @request, @state, @submitted_at, @ready_at, @ended_at, @attempts,
                @queued_ms, @rate_limited_ms, @provider_ms, @lease_attempt, @lease_until, @result, @error, @completions)
        ON CONFLICT (id) DO UPDATE SET
          state = excluded.state, ready_at = excluded.ready_at, ended_at = excluded.ended_at, attempts = excluded.attempts,
          queued_ms = excluded.queued_ms, rate_limited_ms = excluded.rate_limited_ms, provider_ms = excluded.provider_ms,
          lease_attempt = excluded.lease_attempt, lease_until = excluded.lease_until, result = excluded.result,
          error = excluded.error, completions = tasks.completions + excluded.completions
        WHERE tasks.state NOT IN ('completed', 'failed', 'cancelled')
          AND NOT (tasks.state = 'processing' AND tasks.lease_until > @now
                   AND tasks.lease_attempt IS NOT excluded.lease_attempt)`);
      this.selectStored = this.db.prepare('SELECT state, lease_attempt, lease_until FROM tasks WHERE id = ?');
      this.selectOne = this.db.prepare(`SELECT ${COLUMNS} FROM tasks WHERE id = ?`);
      this.selectBatch = this.db.prepare(`SELECT ${COLUMNS} FROM tasks WHERE batch_id = ? ORDER BY line`);
      this.selectOpen = this.db.prepare(
        `SELECT ${COLUMNS} FROM tasks WHERE state NOT IN ('completed', 'failed', 'cancelled') ORDER BY seq`,
      );
      this.writeRows = this.db.transaction((rows: readonly TaskRow[], now: number) => this.applyRows(rows, now));
    } catch (error) {
      this.db.close();
      throw error instanceof FanoutError ? error : describeSqliteError(path, error);
    }
  }

  write(rows: readonly TaskRow[], now: number): WriteOutcome {
    if (rows.length === 0) return { ended: [], leased: [] };
    return this.run(() => this.writeRows(rows, now));
  }

  get(id: string): TaskRow | undefined {
    const row = this.run(() => this.selectOne.get(id));
    return row && fromDb(row);
  }

  listBatch(batchId: string): TaskRow[] {
    return this.run(() => this.selectBatch.all(batchId)).map(fromDb);
  }

  deleteBatch(batchId: string): number {
    return this.run(() => this.db.prepare('DELETE FROM tasks WHERE batch_id = ?').run(batchId).changes);
  }

  recover(now: number): TaskRow[] {
    const open = this.run(() => this.selectOpen.all()).map(fromDb);
    const lost = open.filter((row) => row.state === 'processing');
    for (const row of lost) releaseLostAttempt(row, now);
    if (lost.length > 0) {
      // Written without the lease guard: the process that held these leases is gone.
      this.run(() =>
        this.db.transaction(() => {
          const release = this.db.prepare(
            "UPDATE tasks SET state = 'queued', lease_attempt = NULL, lease_until = NULL, attempts = ? WHERE id = ?",
          );
          for (const row of lost) release.run(JSON.stringify(row.attempts), row.id);
        })(),
      );
    }
    return open;
  }

  putRecord(record: StoredRecord): void {
    this.run(() =>
      this.db
        .prepare(
          'INSERT INTO records (id, kind, tenant, created_at, state, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data',
        )
        .run(record.id, record.kind, record.tenant, record.createdAt, record.state, JSON.stringify(record.data)),
    );
  }

  getRecord(id: string): StoredRecord | undefined {
    const row = this.run(() =>
      this.db.prepare('SELECT id, kind, tenant, created_at, state, data FROM records WHERE id = ?').get(id),
    ) as RecordRow | undefined;
    return row && recordFromDb(row);
  }

  openRecords(kind: StoredRecord['kind']): StoredRecord[] {
    const rows = this.run(() =>
      this.db
        .prepare(
          "SELECT id, kind, tenant, created_at, state, data FROM records WHERE kind = ? AND state = 'running' ORDER BY created_at",
        )
        .all(kind),
    ) as RecordRow[];
    return rows.map(recordFromDb);
  }

  prune(before: number): { tasks: number; records: number } {
    return this.run(() =>
      this.db.transaction(() => {
        const ended = "state IN ('completed', 'failed', 'cancelled')";
        const old = this.db
          .prepare(`SELECT id FROM records WHERE state != 'running' AND created_at < ?`)
          .all(before) as Array<{ id: string }>;
        let tasks = 0;
        const ofRecord = this.db.prepare(`DELETE FROM tasks WHERE batch_id = ? AND ${ended}`);
        for (const { id } of old) tasks += ofRecord.run(id).changes;
        const records = this.db
          .prepare(`DELETE FROM records WHERE state != 'running' AND created_at < ?`)
          .run(before).changes;
        tasks += this.db
          .prepare(
            `DELETE FROM tasks WHERE ended_at < ? AND ${ended} AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM records WHERE state = 'running'))`,
          )
          .run(before).changes;
        return { tasks, records };
      })(),
    );
  }

  /** Empties the connection's page cache (better-sqlite3 builds SQLite with 16 MB of it; it refills as pages are read). */
  trimMemory(): void {
    if (!this.closed) this.run(() => this.db.pragma('shrink_memory'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.prepare('DELETE FROM runner WHERE pid = ? AND host = ?').run(process.pid, hostname());
    } catch {
      // Closing must not fail on a database that can no longer be written.
    }
    this.db.close();
  }

  private applyRows(rows: readonly TaskRow[], now: number): WriteOutcome {
    const outcome: WriteOutcome = { ended: [], leased: [] };
    for (const row of rows) {
      let values: Record<string, unknown>;
      try {
        values = this.valuesOf(row, now);
      } catch {
        // One row that cannot be serialised fails alone; the rest of the write goes on.
        (outcome.unwritable ??= []).push(row.id);
        continue;
      }
      const changes = this.upsert.run(values).changes;
      if (changes === 1) continue;
      const stored = this.selectStored.get(row.id);
      if (stored && ['completed', 'failed', 'cancelled'].includes(stored.state)) outcome.ended.push(row.id);
      else outcome.leased.push(row.id);
    }
    return outcome;
  }

  /** A row as the upsert's parameters: every JSON column serialised. */
  private valuesOf(row: TaskRow, now: number): Record<string, unknown> {
    return {
      id: row.id,
      seq: row.seq,
      batch_id: row.batchId ?? null,
      line: row.line ?? null,
      limit_key: row.key,
      request: this.jsonOf(row.request),
      state: row.state,
      submitted_at: row.submittedAt,
      ready_at: row.readyAt,
      ended_at: row.endedAt ?? null,
      attempts: JSON.stringify(row.attempts),
      queued_ms: row.queuedMs,
      rate_limited_ms: row.rateLimitedMs,
      provider_ms: row.providerMs,
      lease_attempt: row.leaseAttempt ?? null,
      lease_until: row.leaseUntil ?? null,
      result: row.result === undefined ? null : JSON.stringify(row.result),
      error: row.error === undefined ? null : JSON.stringify(row.error),
      completions: row.state === 'completed' ? 1 : 0,
      now,
    };
  }

  private jsonOf(request: TaskRow['request']): string {
    let json = this.requestJson.get(request);
    if (json === undefined) {
      json = JSON.stringify(request);
      this.requestJson.set(request, json);
    }
    return json;
  }

  /**
   * Claims the database for this process. Another process that still runs
   * on this machine keeps it (fanout refuses to start); one that is gone
   * (killed, crashed) gives it up.
   */
  private takeOver(): void {
    const host = hostname();
    const holder = this.db.prepare('SELECT pid, host FROM runner WHERE slot = 1').get() as
      { pid: number; host: string } | undefined;
    if (holder && holder.pid !== process.pid && (holder.host !== host || isAlive(holder.pid))) {
      throw new FanoutError(
        'invalid_config',
        `${this.path} is in use by another fanout (pid ${holder.pid} on ${holder.host}); wait for it to finish, or use another file with --store sqlite:PATH`,
      );
    }
    this.db
      .prepare(
        'INSERT INTO runner (slot, pid, host) VALUES (1, ?, ?) ON CONFLICT (slot) DO UPDATE SET pid = excluded.pid, host = excluded.host',
      )
      .run(process.pid, host);
  }

  private run<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw error instanceof FanoutError ? error : describeSqliteError(this.path, error);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
