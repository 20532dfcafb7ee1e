import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { StoredRecord, TaskRow, TaskStore, WriteOutcome } from '../../contracts/task-store.js';
import { releaseLostAttempt } from '../memory/memory-task-store.js';

export interface RedisTaskStoreOptions {
  /** `redis://host:port/db`; or pass `client`. */
  url?: string;
  /** A connected ioredis client to share (the store does not close it). */
  client?: Redis;
  /** Prefix of every key the store writes. Default `fanout:`. */
  prefix?: string;
}

const lua = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

type Script = (...args: Array<string | number>) => Promise<string | number>;

/**
 * Task rows and batch and run records in Redis, for every process pointed at
 * it. A task is a hash under `<prefix>task:<id>` (its row as JSON, with its
 * state and lease beside it for the write script to check); sorted sets index
 * the tasks not ended (by submission order), the ended ones (by end time) and
 * each batch's (by line); a record is a JSON string under `<prefix>record:<id>`,
 * indexed while running (by kind) and once done. A write is one Lua script,
 * so it is applied whole, never changes an ended task, and refuses a row
 * whose lease another attempt holds. Keys are built from the prefix inside the
 * scripts: one Redis (or one Cluster hash slot through a `{…}` prefix).
 */
export class RedisTaskStore implements TaskStore {
  private readonly redis: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly scripts: { write: Script; prune: Script; deleteBatch: Script };
  private closed = false;

  constructor(options: RedisTaskStoreOptions) {
    if (!options.client && !options.url) throw new Error('RedisTaskStore: give a url or a client');
    this.ownsClient = !options.client;
    this.redis =
      options.client ?? new Redis(options.url as string, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
    // Each command's promise says when Redis cannot be reached; the connection's own errors would only repeat it.
    if (this.ownsClient) this.redis.on('error', () => undefined);
    this.prefix = options.prefix ?? 'fanout:';
    const define = (name: string, file: string): Script => {
      this.redis.defineCommand(name, { numberOfKeys: 0, lua: lua(file) });
      const command = (this.redis as unknown as Record<string, Script>)[name] as Script;
      return (...args) => command.apply(this.redis, args);
    };
    this.scripts = {
      write: define('fanoutWriteTasks', 'write-tasks-0.lua'),
      prune: define('fanoutPruneTasks', 'prune-tasks-0.lua'),
      deleteBatch: define('fanoutDeleteBatch', 'delete-batch-0.lua'),
    };
  }

  async write(rows: readonly TaskRow[], now: number): Promise<WriteOutcome> {
    const args: Array<string | number> = [this.prefix, now];
    const unwritable: string[] = [];
    for (const row of rows) {
      let json: string;
      try {
        json = JSON.stringify(row);
      } catch {
        unwritable.push(row.id);
        continue;
      }
      args.push(row.id, row.state, row.leaseAttempt ?? '', row.leaseUntil ?? 0, row.seq);
      args.push(row.batchId ?? '', row.line ?? 0, row.endedAt ?? '', json);
    }
    const outcome: WriteOutcome = { ended: [], leased: [] };
    if (args.length > 2) {
      const answer = JSON.parse(String(await this.scripts.write(...args))) as Record<string, string[] | object>;
      // cjson writes an empty list as {}.
      outcome.ended = Array.isArray(answer.ended) ? answer.ended : [];
      outcome.leased = Array.isArray(answer.leased) ? answer.leased : [];
    }
    if (unwritable.length > 0) outcome.unwritable = unwritable;
    return outcome;
  }

  async get(id: string): Promise<TaskRow | undefined> {
    const json = await this.redis.hget(this.taskKey(id), 'row');
    return json === null ? undefined : (JSON.parse(json) as TaskRow);
  }

  async listBatch(batchId: string): Promise<TaskRow[]> {
    return this.rowsOf(await this.redis.zrange(`${this.prefix}batch:${batchId}`, '0', '-1'));
  }

  async deleteBatch(batchId: string): Promise<number> {
    return Number(await this.scripts.deleteBatch(this.prefix, batchId));
  }

  /**
   * Every task not ended, in submission order; those left processing go back
   * to queued, their attempts marked lost. For the one process that owns the
   * store's unfinished work after a restart: a task another live process is
   * running would be taken from it.
   */
  async recover(now: number): Promise<TaskRow[]> {
    const open = await this.rowsOf(await this.redis.zrange(`${this.prefix}tasks-open`, '0', '-1'));
    await this.release(
      open.filter((row) => row.state === 'processing'),
      now,
    );
    return open;
  }

  /** The ids of up to `limit` tasks not ended, first submitted first (by their order of submission). */
  async openIds(limit: number): Promise<string[]> {
    return this.redis.zrange(`${this.prefix}tasks-open`, '0', String(Math.max(0, limit - 1)));
  }

  /**
   * The task of `id` as the process that ran it left it: when it was
   * processing, back to queued with its attempt marked lost, written over
   * the lease. Only for a task whose holder is known to be gone (a queue's
   * stalled-job check said so): a live holder's later writes are then refused.
   */
  async releaseLost(id: string, now: number): Promise<TaskRow | undefined> {
    const row = await this.get(id);
    if (row?.state === 'processing') await this.release([row], now);
    return row;
  }

  /** Puts `lost` back in the queue, written without the lease check: the process that held them is gone. */
  private async release(lost: TaskRow[], now: number): Promise<void> {
    if (lost.length === 0) return;
    const write = this.redis.multi();
    for (const row of lost) {
      releaseLostAttempt(row, now);
      const fields = { state: row.state, lease: '', leaseUntil: 0, row: JSON.stringify(row) };
      write.hset(this.taskKey(row.id), fields);
    }
    await write.exec();
  }

  async putRecord(record: StoredRecord): Promise<void> {
    const running = record.state === 'running';
    const transaction = this.redis.multi().set(`${this.prefix}record:${record.id}`, JSON.stringify(record));
    for (const kind of ['batch', 'run'] as const) transaction.zrem(`${this.prefix}records-open:${kind}`, record.id);
    transaction.zrem(`${this.prefix}records-done`, record.id);
    if (running) transaction.zadd(`${this.prefix}records-open:${record.kind}`, record.createdAt, record.id);
    else transaction.zadd(`${this.prefix}records-done`, record.createdAt, record.id);
    await transaction.exec();
  }

  async getRecord(id: string): Promise<StoredRecord | undefined> {
    const json = await this.redis.get(`${this.prefix}record:${id}`);
    return json === null ? undefined : (JSON.parse(json) as StoredRecord);
  }

  async openRecords(kind: StoredRecord['kind']): Promise<StoredRecord[]> {
    const ids = await this.redis.zrange(`${this.prefix}records-open:${kind}`, '0', '-1');
    if (ids.length === 0) return [];
    const texts = await this.redis.mget(ids.map((id) => `${this.prefix}record:${id}`));
    return texts.filter((text): text is string => text !== null).map((text) => JSON.parse(text) as StoredRecord);
  }

  async prune(before: number): Promise<{ tasks: number; records: number }> {
    return JSON.parse(String(await this.scripts.prune(this.prefix, before))) as { tasks: number; records: number };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.redis.quit();
  }

  private taskKey(id: string): string {
    return `${this.prefix}task:${id}`;
  }

  /** The rows of `ids`, in that order, in one round trip; undefined for an id with none. */
  async getMany(ids: readonly string[]): Promise<Array<TaskRow | undefined>> {
    if (ids.length === 0) return [];
    const read = this.redis.pipeline();
    for (const id of ids) read.hget(this.taskKey(id), 'row');
    const answers = (await read.exec()) ?? [];
    return answers.map(([error, json]) => {
      if (error) throw error;
      return typeof json === 'string' ? (JSON.parse(json) as TaskRow) : undefined;
    });
  }

  /** The rows of `ids` that exist, in that order. */
  private async rowsOf(ids: string[]): Promise<TaskRow[]> {
    return (await this.getMany(ids)).filter((row): row is TaskRow => row !== undefined);
  }
}
