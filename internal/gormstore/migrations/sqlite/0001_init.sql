-- Products, locations, stock levels and the stock ledger.
-- Every invariant the service relies on is also a constraint here, so no
-- code path can store an oversold or negative level.

CREATE TABLE locations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code       TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at DATETIME NOT NULL
);
INSERT INTO locations (id, code, name, created_at) VALUES (1, 'DEFAULT', 'Default location', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));

CREATE TABLE products (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    sku               TEXT NOT NULL UNIQUE CHECK (length(sku) BETWEEN 1 AND 64),
    name              TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price_micros      INTEGER NOT NULL CHECK (price_micros >= 0),
    threshold         INTEGER NOT NULL DEFAULT 0 CHECK (threshold >= 0),
    stock             INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    reserved          INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= stock),
    low_stock_alerted BOOLEAN NOT NULL DEFAULT FALSE,
    version           INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);

CREATE TABLE stock_levels (
    product_id  INTEGER NOT NULL REFERENCES products (id),
    location_id INTEGER NOT NULL REFERENCES locations (id),
    stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= stock),
    version     INTEGER NOT NULL CHECK (version >= 1),
    lease_token INTEGER NOT NULL DEFAULT 0,
    updated_at  DATETIME NOT NULL,
    PRIMARY KEY (product_id, location_id)
) WITHOUT ROWID;

CREATE TABLE movement_types (
    code TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO movement_types (code) VALUES ('IN'), ('OUT'), ('ADJUST');

-- The ledger sequence is taken from this one-row counter as the last
-- statement of each stock transaction, so sequences follow commit order
-- without gaps (see the PostgreSQL migration).
CREATE TABLE ledger_sequence (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL CHECK (last >= 0)
);
INSERT INTO ledger_sequence (id, last) VALUES (1, 0);

CREATE TABLE stock_movements (
    seq             INTEGER PRIMARY KEY CHECK (seq > 0),
    product_id      INTEGER NOT NULL REFERENCES products (id),
    location_id     INTEGER NOT NULL REFERENCES locations (id),
    type            TEXT NOT NULL REFERENCES movement_types (code),
    delta           INTEGER NOT NULL,
    quantity_after  INTEGER NOT NULL CHECK (quantity_after >= 0),
    available_after INTEGER NOT NULL,
    low_stock_alert BOOLEAN NOT NULL DEFAULT FALSE,
    reason          TEXT NOT NULL DEFAULT '',
    reference       TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    lease_token     INTEGER NOT NULL DEFAULT 0,
    trace_id        TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX stock_movements_product_seq ON stock_movements (product_id, seq);
CREATE INDEX stock_movements_location_seq ON stock_movements (location_id, seq);
CREATE INDEX stock_movements_alert_seq ON stock_movements (seq) WHERE low_stock_alert;

-- Idempotency keys of product mutations (stock mutations keep theirs on the
-- ledger row).
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    operation    TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    product_id   INTEGER NOT NULL REFERENCES products (id),
    created_at   DATETIME NOT NULL
) WITHOUT ROWID;
