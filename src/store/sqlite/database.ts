import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { FanoutError } from '../../contracts/errors.js';

/** "FNOT" in the file header: marks a database as fanout's, so a foreign one is never changed. */
export const APPLICATION_ID = 0x464e4f54;

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The schema migrations shipped with this fanout, in order (files `NNN_name.sql`). */
export function migrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file.slice(4, -4),
      sql: readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8'),
    }));
}

function sqliteCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

/** Turns SQLite's failures into errors that say what to do; never one that hides the file's contents. */
export function describeSqliteError(path: string, error: unknown): FanoutError {
  const code = sqliteCode(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new FanoutError(
      'invalid_config',
      `${path} is not a readable SQLite database (${message}); fanout left it untouched. Move it away, or use another file with --store sqlite:PATH`,
      { cause: error },
    );
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return new FanoutError(
      'io_error',
      `${path}: the disk is full; nothing stored so far was lost. Free some space and run the same command again`,
      { cause: error },
    );
  }
  // SQLite's own "cannot write here" codes, and any file-system errno (EACCES, EROFS, ENOTDIR, …).
  if (
    code === 'SQLITE_READONLY' ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code === 'SQLITE_PERM' ||
    /^E[A-Z]+$/.test(code)
  ) {
    return new FanoutError(
      'io_error',
      `${path} cannot be written (${message}); check the path and its permissions, or use another file with --store sqlite:PATH`,
      { cause: error },
    );
  }
  return new FanoutError('io_error', `${path}: ${message}`, { cause: error });
}

type Database = BetterSqlite3.Database;
type DatabaseConstructor = typeof BetterSqlite3;

let DatabaseClass: DatabaseConstructor | undefined;

/** better-sqlite3 is loaded on first use, so programs without a SQLite store never load it. */
function databaseClass(): DatabaseConstructor {
  DatabaseClass ??= createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
  return DatabaseClass;
}

/**
 * Opens (or creates) a fanout database: WAL journal, the application id
 * checked, pending migrations applied each in its own transaction. Refuses,
 * without writing anything, a file that is not SQLite, a SQLite file of
 * another application, and a file from a newer fanout.
 */
export function openDatabase(path: string): Database {
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw describeSqliteError(dirname(path), error);
    }
  }
  let db: Database;
  try {
    const Database = databaseClass();
    db = new Database(path);
  } catch (error) {
    throw describeSqliteError(path, error);
  }
  try {
    checkOwnership(path, db);
    migrate(db);
    db.pragma('journal_mode = WAL');
    // FULL: every commit is on disk before it returns, so a power cut loses no
    // committed task. The engine groups its writes, so this costs little
    // (see the T-sqlite benchmark).
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    // 2 MB of page cache, SQLite's own default: better-sqlite3 builds it with 16 MB a connection, which a
    // long-running server fills with the pages of tasks that have ended and then keeps (see F-soak).
    db.pragma('cache_size = -2000');
    return db;
  } catch (error) {
    db.close();
    throw error instanceof FanoutError ? error : describeSqliteError(path, error);
  }
}

function checkOwnership(path: string, db: Database): void {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
  const empty = applicationId === 0 && version === 0 && tables === 0;
  if (!empty && applicationId !== APPLICATION_ID) {
    throw new FanoutError(
      'invalid_config',
      `${path} is a SQLite database of another application; fanout left it untouched. Use another file with --store sqlite:PATH`,
    );
  }
  const latest = migrations().at(-1)?.version ?? 0;
  if (version > latest) {
    throw new FanoutError(
      'invalid_config',
      `${path} was written by a newer fanout (schema ${version}; this fanout knows up to ${latest}); it was left untouched. Upgrade fanout, or use another file with --store sqlite:PATH`,
    );
  }
}

function migrate(db: Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const migration of migrations()) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}
