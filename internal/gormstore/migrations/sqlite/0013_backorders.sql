-- Selling beyond the shelf (see the PostgreSQL migration). SQLite cannot
-- drop a CHECK, so products, stock_levels and stock_movements are made
-- anew: the procedure of SQLite's ALTER TABLE documentation (a new table,
-- the rows copied, the old one dropped, the new one renamed), which runs
-- with foreign keys off, so that the tables that refer to these keep
-- referring to them by name, and commits only if every reference holds.
-- Columns keep their order; the new ones come last.
-- migrate: rebuild

CREATE TABLE products_0013 (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    sku               TEXT NOT NULL UNIQUE CHECK (length(sku) BETWEEN 1 AND 64),
    name              TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price_micros      INTEGER NOT NULL CHECK (price_micros >= 0),
    threshold         INTEGER NOT NULL DEFAULT 0 CHECK (threshold >= 0),
    stock             INTEGER NOT NULL DEFAULT 0,
    reserved          INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    low_stock_alerted BOOLEAN NOT NULL DEFAULT FALSE,
    version           INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    last_seq          INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    revision          INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),
    damaged           INTEGER NOT NULL DEFAULT 0 CHECK (damaged >= 0),
    quality_control   INTEGER NOT NULL DEFAULT 0 CHECK (quality_control >= 0),
    incoming          INTEGER NOT NULL DEFAULT 0 CHECK (incoming >= 0),
    safety_stock      INTEGER NOT NULL DEFAULT 0 CHECK (safety_stock >= 0),
    tracked           BOOLEAN NOT NULL DEFAULT TRUE,
    backorder_limit   INTEGER NOT NULL DEFAULT 0 CHECK (backorder_limit >= 0),
    backordered       INTEGER NOT NULL DEFAULT 0 CHECK (backordered >= 0),
    CHECK (reserved + damaged + quality_control + safety_stock <= stock + backordered)
);
INSERT INTO products_0013 (id, sku, name, price_micros, threshold, stock, reserved, low_stock_alerted, version, created_at,
        updated_at, last_seq, revision, damaged, quality_control, incoming, safety_stock)
    SELECT id, sku, name, price_micros, threshold, stock, reserved, low_stock_alerted, version, created_at,
        updated_at, last_seq, revision, damaged, quality_control, incoming, safety_stock
    FROM products;
DROP TABLE products;
ALTER TABLE products_0013 RENAME TO products;
CREATE INDEX products_revision ON products (revision);

CREATE TABLE stock_levels_0013 (
    product_id      INTEGER NOT NULL REFERENCES products (id),
    location_id     INTEGER NOT NULL REFERENCES locations (id),
    stock           INTEGER NOT NULL DEFAULT 0,
    reserved        INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    version         INTEGER NOT NULL CHECK (version >= 1),
    lease_token     INTEGER NOT NULL DEFAULT 0,
    updated_at      DATETIME NOT NULL,
    lease_epoch     INTEGER NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),
    next_expiry     DATETIME,
    damaged         INTEGER NOT NULL DEFAULT 0 CHECK (damaged >= 0),
    quality_control INTEGER NOT NULL DEFAULT 0 CHECK (quality_control >= 0),
    incoming        INTEGER NOT NULL DEFAULT 0 CHECK (incoming >= 0),
    safety_stock    INTEGER NOT NULL DEFAULT 0 CHECK (safety_stock >= 0),
    backorder_limit INTEGER DEFAULT 0 CHECK (backorder_limit >= 0),
    CHECK (backorder_limit IS NULL OR reserved + damaged + quality_control + safety_stock <= stock + backorder_limit),
    PRIMARY KEY (product_id, location_id)
) WITHOUT ROWID;
INSERT INTO stock_levels_0013 (product_id, location_id, stock, reserved, version, lease_token, updated_at, lease_epoch,
        next_expiry, damaged, quality_control, incoming, safety_stock)
    SELECT product_id, location_id, stock, reserved, version, lease_token, updated_at, lease_epoch,
        next_expiry, damaged, quality_control, incoming, safety_stock
    FROM stock_levels;
DROP TABLE stock_levels;
ALTER TABLE stock_levels_0013 RENAME TO stock_levels;

CREATE TABLE stock_movements_0013 (
    seq                   INTEGER PRIMARY KEY CHECK (seq > 0),
    product_id            INTEGER NOT NULL REFERENCES products (id),
    location_id           INTEGER NOT NULL REFERENCES locations (id),
    type                  TEXT NOT NULL REFERENCES movement_types (code),
    delta                 INTEGER NOT NULL,
    quantity_after        INTEGER NOT NULL,
    available_after       INTEGER NOT NULL,
    low_stock_alert       BOOLEAN NOT NULL DEFAULT FALSE,
    reason                TEXT NOT NULL DEFAULT '',
    reference             TEXT NOT NULL DEFAULT '',
    actor                 TEXT NOT NULL DEFAULT '',
    idempotency_key       TEXT UNIQUE,
    request_hash          TEXT,
    lease_token           INTEGER NOT NULL DEFAULT 0,
    trace_id              TEXT NOT NULL DEFAULT '',
    created_at            DATETIME NOT NULL,
    lease_epoch           INTEGER NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),
    reserved_delta        INTEGER NOT NULL DEFAULT 0,
    reservation_id        INTEGER,
    damaged_delta         INTEGER,
    quality_control_delta INTEGER,
    safety_stock_delta    INTEGER,
    incoming_delta        INTEGER,
    from_state            TEXT CHECK (from_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING')),
    to_state              TEXT CHECK (to_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING')),
    transfer_id           INTEGER REFERENCES transfers (id),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
INSERT INTO stock_movements_0013 (seq, product_id, location_id, type, delta, quantity_after, available_after, low_stock_alert,
        reason, reference, actor, idempotency_key, request_hash, lease_token, trace_id, created_at, lease_epoch,
        reserved_delta, reservation_id, damaged_delta, quality_control_delta, safety_stock_delta, incoming_delta,
        from_state, to_state, transfer_id)
    SELECT seq, product_id, location_id, type, delta, quantity_after, available_after, low_stock_alert,
        reason, reference, actor, idempotency_key, request_hash, lease_token, trace_id, created_at, lease_epoch,
        reserved_delta, reservation_id, damaged_delta, quality_control_delta, safety_stock_delta, incoming_delta,
        from_state, to_state, transfer_id
    FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_0013 RENAME TO stock_movements;
CREATE INDEX stock_movements_product_seq ON stock_movements (product_id, seq);
CREATE INDEX stock_movements_location_seq ON stock_movements (location_id, seq);
CREATE INDEX stock_movements_alert_seq ON stock_movements (seq) WHERE low_stock_alert;
CREATE INDEX stock_movements_reservation ON stock_movements (reservation_id) WHERE reservation_id IS NOT NULL;
CREATE INDEX stock_movements_transfer ON stock_movements (transfer_id, product_id) WHERE transfer_id IS NOT NULL;
