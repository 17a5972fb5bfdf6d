-- A stock request refused for a reason a retry cannot change (not enough
-- stock, a stale count) is remembered by its idempotency key: a late
-- duplicate of it (a retry that overtook a first attempt still queued) is
-- refused alike, and never applied after the client was told no.
CREATE TABLE stock_rejections (
    idempotency_key TEXT PRIMARY KEY,
    request_hash    TEXT NOT NULL,
    code            TEXT NOT NULL,
    message         TEXT NOT NULL,
    created_at      DATETIME NOT NULL
) WITHOUT ROWID;
