-- Transfers (see the PostgreSQL migration).

INSERT INTO movement_types (code) VALUES ('SHIP'), ('RECEIVE'), ('RETURN');

CREATE TABLE transfers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT NOT NULL CHECK (status IN ('DRAFT', 'IN_TRANSIT', 'RECEIVED', 'CANCELLED')),
    origin_id       INTEGER NOT NULL REFERENCES locations (id),
    destination_id  INTEGER NOT NULL REFERENCES locations (id),
    reference       TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    version         INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    CHECK (origin_id <> destination_id),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX transfers_status_id ON transfers (status, id);

CREATE TABLE transfer_items (
    transfer_id INTEGER NOT NULL REFERENCES transfers (id),
    product_id  INTEGER NOT NULL REFERENCES products (id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    shipped     INTEGER NOT NULL DEFAULT 0 CHECK (shipped = 0 OR shipped = quantity),
    received    INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0),
    returned    INTEGER NOT NULL DEFAULT 0 CHECK (returned >= 0),
    CHECK (received + returned <= shipped),
    PRIMARY KEY (transfer_id, product_id)
) WITHOUT ROWID;

ALTER TABLE stock_movements ADD COLUMN transfer_id INTEGER REFERENCES transfers (id);
CREATE INDEX stock_movements_transfer ON stock_movements (transfer_id, product_id) WHERE transfer_id IS NOT NULL;
