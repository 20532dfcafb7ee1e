import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/sqlite/database.js';
import { SWEEP_EVERY_MS, SqliteCacheStore } from '../src/store/sqlite/sqlite-cache-store.js';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.js';
import { taskRow, taskStoreContract } from '../src/testing/contracts/task-store-contract.js';
import { cacheStoreContract } from '../src/testing/contracts/cache-store-contract.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');

const dir = (): string => mkdtempSync(join(tmpdir(), 'fanout-sqlite-'));

cacheStoreContract('sqlite (a real file)', () => new SqliteCacheStore(join(dir(), 'fanout.db')));

describe('SQLite database file', () => {
  it('keeps cached answers across a close and reopen', () => {
    const path = join(dir(), 'nested', 'fanout.db');
    const first = new SqliteCacheStore(path);
    first.set('k', {
      tenant: 't',
      storedAt: 1,
      expiresAt: 1e12,
      result: {
        text: 'kept',
        usage: { inputTokens: 1, outputTokens: 2, cacheReadTokens: 0, cacheWriteTokens: 0 },
        finishReason: 'stop',
        model: 'm',
      },
    });
    first.close();
    const second = new SqliteCacheStore(path);
    expect(second.get('k', 2)?.result.text).toBe('kept');
    const db = openDatabase(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    second.close();
  });

  it('deletes cached answers past their expiry as new ones are stored, at most once a sweep interval', () => {
    const path = join(dir(), 'fanout.db');
    const store = new SqliteCacheStore(path);
    const result = {
      text: 'a',
      usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
      finishReason: 'stop' as const,
      model: 'm',
    };
    const keys = () => {
      const reader = new Database(path, { readonly: true });
      try {
        return (reader.prepare('SELECT key FROM cache ORDER BY key').all() as Array<{ key: string }>).map(
          (row) => row.key,
        );
      } finally {
        reader.close();
      }
    };
    store.set('a-short', { tenant: 't', storedAt: 0, expiresAt: 1_000, result });
    store.set('b-long', { tenant: 't', storedAt: 0, expiresAt: 10 * SWEEP_EVERY_MS, result });
    // Past a-short's expiry, but within the interval of the first sweep (at 0): nothing is deleted yet.
    store.set('c-new', { tenant: 't', storedAt: SWEEP_EVERY_MS - 1, expiresAt: 10 * SWEEP_EVERY_MS, result });
    expect(keys()).toEqual(['a-short', 'b-long', 'c-new']);
    // One interval on, the expired row goes and the live ones stay.
    store.set('d-new', { tenant: 't', storedAt: SWEEP_EVERY_MS, expiresAt: 10 * SWEEP_EVERY_MS, result });
    expect(keys()).toEqual(['b-long', 'c-new', 'd-new']);
    store.close();
  });

  it('refuses a file that is not a database, and leaves it as it was', () => {
    const path = join(dir(), 'notes.db');
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(200));
    const before = readFileSync(path);
    expect(() => openDatabase(path)).toThrow(/is not a readable SQLite database .*left it untouched/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('refuses another application’s SQLite database, and leaves it as it was', () => {
    const path = join(dir(), 'other.db');
    const other = new Database(path);
    other.exec(
      'CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (12.5);',
    );
    other.close();
    const before = readFileSync(path);
    expect(() => openDatabase(path)).toThrow(/a SQLite database of another application; fanout left it untouched/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('refuses a database from a newer fanout, and leaves it as it was', () => {
    const path = join(dir(), 'newer.db');
    openDatabase(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 999');
    raw.close();
    const before = readFileSync(path);
    expect(() => openDatabase(path)).toThrow(/written by a newer fanout \(schema 999; this fanout knows up to 3\)/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('says where it could not create the database', () => {
    const file = join(dir(), 'plain-file');
    writeFileSync(file, 'x');
    expect(() => openDatabase(join(file, 'sub', 'fanout.db'))).toThrow(
      /plain-file\/sub cannot be written .*--store sqlite:PATH/,
    );
  });
});

taskStoreContract('sqlite (a real file)', () => new SqliteTaskStore(join(dir(), 'fanout.db')));

describe('SQLite task store', () => {
  it('holds at most 2 MB of page cache (not better-sqlite3’s 16 MB), and empties it on trimMemory without losing a row', () => {
    const store = new SqliteTaskStore(join(dir(), 'fanout.db'));
    expect(store.db.pragma('cache_size', { simple: true })).toBe(-2000);
    store.write([taskRow('t1'), taskRow('t2')], 1);
    store.trimMemory();
    expect([store.get('t1')?.id, store.get('t2')?.id]).toEqual(['t1', 't2']);
    store.close();
    // A store that was closed has nothing to give back, and says nothing of it.
    expect(() => store.trimMemory()).not.toThrow();
  });

  it('keeps tasks across a close and reopen, and counts each completion once', () => {
    const path = join(dir(), 'fanout.db');
    const first = new SqliteTaskStore(path);
    first.write(
      [
        taskRow('t1'),
        taskRow('t2', {
          state: 'completed',
          endedAt: 5,
          result: {
            text: 'x',
            usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
            finishReason: 'stop',
            model: 'm',
          },
        }),
      ],
      1,
    );
    first.write([taskRow('t2', { state: 'completed' })], 2);
    first.close();
    const second = new SqliteTaskStore(path);
    expect(second.get('t1')?.state).toBe('queued');
    expect(second.db.prepare('SELECT id, completions FROM tasks ORDER BY id').all()).toEqual([
      { id: 't1', completions: 0 },
      { id: 't2', completions: 1 },
    ]);
    second.close();
  });

  it('refuses a database another live fanout is using, and takes over one whose fanout is gone', () => {
    const path = join(dir(), 'fanout.db');
    const store = new SqliteTaskStore(path);
    // This process holds it; pretend the holder is another live process (pid 1 always exists).
    store.db.prepare('UPDATE runner SET pid = 1').run();
    expect(() => new SqliteTaskStore(path)).toThrow(/in use by another fanout \(pid 1 on .*\)/);
    // A holder that no longer runs gives the database up.
    store.db.prepare('UPDATE runner SET pid = 2147483646').run();
    const next = new SqliteTaskStore(path);
    expect(next.db.prepare('SELECT pid FROM runner').get()).toEqual({ pid: process.pid });
    next.close();
    store.close();
  });
});

describe('a full disk', () => {
  it('fails the write with a message that says what to do, and loses nothing already stored', () => {
    const path = join(dir(), 'fanout.db');
    const store = new SqliteTaskStore(path);
    store.write([taskRow('t1')], 1);
    // SQLite reports a database that may not grow any more exactly as it reports a full disk (SQLITE_FULL).
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 1}`);
    const big = Array.from({ length: 200 }, (_, i) =>
      taskRow(`t${i + 2}`, { request: { model: 'mock:m', messages: [{ role: 'user', content: 'x'.repeat(2000) }] } }),
    );
    expect(() => store.write(big, 2)).toThrow(
      /the disk is full; nothing stored so far was lost\. Free some space and run the same command again/,
    );
    expect(store.get('t1')?.state).toBe('queued');
    expect(store.get('t2')).toBeUndefined();
    store.close();
    const reopened = new SqliteTaskStore(path);
    expect(reopened.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(reopened.get('t1')?.state).toBe('queued');
    reopened.close();
  });
});
