-- fanout schema 1: the result cache.
-- One row per (tenant-scoped) cache key; the key is a SHA-256 of the tenant and
-- the request's answer-changing fields, so a key never matches across tenants.
-- expires_at lets a lookup ignore stale rows and a sweep delete them.
CREATE TABLE cache (
  key        TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  stored_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  result     TEXT NOT NULL
) STRICT;

CREATE INDEX cache_tenant ON cache (tenant);
CREATE INDEX cache_expires_at ON cache (expires_at);
