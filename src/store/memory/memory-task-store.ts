import { isTerminal } from '../../contracts/task-state.js';
import type { StoredRecord, TaskRow, TaskStore, WriteOutcome } from '../../contracts/task-store.js';
import { deleteWhere } from './delete-where.js';

/** Task records in this process's memory: the store's contract without durability, for tests and throwaway runs. */
export class MemoryTaskStore implements TaskStore {
  private readonly rows = new Map<string, TaskRow>();
  private readonly records = new Map<string, StoredRecord>();

  write(rows: readonly TaskRow[], now: number): WriteOutcome {
    const outcome: WriteOutcome = { ended: [], leased: [] };
    for (const row of rows) {
      const stored = this.rows.get(row.id);
      if (stored && isTerminal(stored.state)) outcome.ended.push(row.id);
      else if (stored && heldByAnother(stored, row, now)) outcome.leased.push(row.id);
      else {
        // Kept as a durable store keeps it: as JSON, so a row one store cannot hold is refused by all.
        let copy: TaskRow;
        try {
          copy = JSON.parse(JSON.stringify(row)) as TaskRow;
        } catch {
          (outcome.unwritable ??= []).push(row.id);
          continue;
        }
        this.rows.set(row.id, copy);
      }
    }
    return outcome;
  }

  get(id: string): TaskRow | undefined {
    const row = this.rows.get(id);
    return row && structuredClone(row);
  }

  listBatch(batchId: string): TaskRow[] {
    return [...this.rows.values()]
      .filter((row) => row.batchId === batchId)
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
      .map((row) => structuredClone(row));
  }

  deleteBatch(batchId: string): number {
    return deleteWhere(this.rows, (row) => row.batchId === batchId);
  }

  recover(now: number): TaskRow[] {
    const open = [...this.rows.values()].filter((row) => !isTerminal(row.state)).sort((a, b) => a.seq - b.seq);
    for (const row of open) if (row.state === 'processing') releaseLostAttempt(row, now);
    return open.map((row) => structuredClone(row));
  }

  putRecord(record: StoredRecord): void {
    this.records.set(record.id, JSON.parse(JSON.stringify(record)) as StoredRecord);
  }

  getRecord(id: string): StoredRecord | undefined {
    const record = this.records.get(id);
    return record && structuredClone(record);
  }

  openRecords(kind: StoredRecord['kind']): StoredRecord[] {
    return [...this.records.values()]
      .filter((record) => record.kind === kind && record.state === 'running')
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((record) => structuredClone(record));
  }

  prune(before: number): { tasks: number; records: number } {
    const gone = new Set<string>();
    const records = deleteWhere(this.records, (record) => {
      const old = record.state !== 'running' && record.createdAt < before;
      if (old) gone.add(record.id);
      return old;
    });
    const running = new Set(
      [...this.records.values()].filter((record) => record.state === 'running').map((record) => record.id),
    );
    const tasks = deleteWhere(this.rows, (row) => {
      if (!isTerminal(row.state)) return false;
      if (row.batchId !== undefined && gone.has(row.batchId)) return true;
      return (
        row.endedAt !== undefined && row.endedAt < before && !(row.batchId !== undefined && running.has(row.batchId))
      );
    });
    return { tasks, records };
  }

  close(): void {
    // Nothing held open.
  }
}

/** True when `stored` is processing under a live lease that `incoming` does not hold. */
export function heldByAnother(stored: TaskRow, incoming: TaskRow, now: number): boolean {
  return (
    stored.state === 'processing' &&
    stored.leaseAttempt !== undefined &&
    (stored.leaseUntil ?? 0) > now &&
    incoming.leaseAttempt !== stored.leaseAttempt
  );
}

/** A task whose process died mid-call: back to queued, the attempt marked lost. */
export function releaseLostAttempt(row: TaskRow, now: number): void {
  row.state = 'queued';
  row.leaseAttempt = undefined;
  row.leaseUntil = undefined;
  const last = row.attempts[row.attempts.length - 1];
  if (last && last.endedAt === undefined) {
    last.endedAt = now;
    last.outcome = 'failed';
    last.error = { code: 'network', message: 'the process running this attempt stopped before it ended' };
  }
}
