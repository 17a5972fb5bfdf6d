-- Fencing across lock backends. A backend's tokens are only comparable
-- within its fencing domain (one etcd cluster, the Redis counters, one
-- process lineage for the in-process lock). Each time replicas start with a
-- domain other than the latest one, a new epoch begins; writes are fenced on
-- (lease_epoch, lease_token), so a write from an older epoch on a level that
-- a newer epoch already wrote is rejected as a stale lease.

CREATE TABLE lock_epochs (
    epoch      BIGINT PRIMARY KEY CHECK (epoch >= 1),
    domain     TEXT NOT NULL CHECK (length(domain) BETWEEN 1 AND 200),
    started_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE stock_levels ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0);
ALTER TABLE stock_movements ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0);
