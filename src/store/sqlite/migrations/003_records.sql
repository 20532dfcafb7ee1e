-- fanout schema 3: batches and pipeline runs kept beside their tasks, and ageing.
-- One row per batch or run sent to `fanout serve`: whose it is, when it came,
-- whether it is still going (`state`), and its own details as JSON (a batch's
-- invalid lines; a run's pipeline, inputs and finished steps). Its tasks stay
-- in `tasks`, found by `batch_id`.
CREATE TABLE records (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,
  tenant      TEXT NOT NULL,
  created_at  REAL NOT NULL,
  state       TEXT NOT NULL,
  data        TEXT NOT NULL
) STRICT;

-- Records still going, for resuming them after a restart.
CREATE INDEX records_open ON records (kind, created_at) WHERE state = 'running';
CREATE INDEX records_age ON records (created_at);
-- Ended tasks by age, for the retention sweep.
CREATE INDEX tasks_ended ON tasks (ended_at) WHERE ended_at IS NOT NULL;
