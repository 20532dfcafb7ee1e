-- fanout schema 2: durable tasks.
-- One row per task with its request (JSON), state, retry schedule (ready_at),
-- attempts (JSON), time split, lease and outcome. An ended row
-- (completed, failed, cancelled) is never changed again; `completions` counts
-- the commits of a completed result and so can show that none happened twice.
CREATE TABLE tasks (
  id              TEXT PRIMARY KEY,
  seq             INTEGER NOT NULL,
  batch_id        TEXT,
  line            INTEGER,
  limit_key       TEXT NOT NULL,
  request         TEXT NOT NULL,
  state           TEXT NOT NULL,
  submitted_at    REAL NOT NULL,
  ready_at        REAL NOT NULL DEFAULT 0,
  ended_at        REAL,
  attempts        TEXT NOT NULL DEFAULT '[]',
  queued_ms       REAL NOT NULL DEFAULT 0,
  rate_limited_ms REAL NOT NULL DEFAULT 0,
  provider_ms     REAL NOT NULL DEFAULT 0,
  lease_attempt   TEXT,
  lease_until     REAL,
  result          TEXT,
  error           TEXT,
  completions     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Tasks still to run, for recovery after a restart.
CREATE INDEX tasks_open ON tasks (seq) WHERE state NOT IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_batch ON tasks (batch_id, line) WHERE batch_id IS NOT NULL;

-- The process using this database, so that a second one does not run the same tasks.
CREATE TABLE runner (
  slot INTEGER PRIMARY KEY CHECK (slot = 1),
  pid  INTEGER NOT NULL,
  host TEXT NOT NULL
) STRICT;
