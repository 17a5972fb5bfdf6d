-- Reservations hold stock for an order until it is committed (a sale),
-- released, or expires. A level's reserved is the sum of the quantities of
-- its active reservation items; its next_expiry is a lower bound of their
-- expiry times, so a stock transaction knows cheaply when some may have
-- expired (it then releases them before applying anything).

INSERT INTO movement_types (code) VALUES ('RESERVE'), ('COMMIT'), ('RELEASE'), ('EXPIRE');

CREATE TABLE reservations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT NOT NULL CHECK (status IN ('ACTIVE', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    expires_at      DATETIME NOT NULL,
    reference       TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    version         INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX reservations_status_id ON reservations (status, id);

CREATE TABLE reservation_items (
    reservation_id INTEGER NOT NULL REFERENCES reservations (id),
    product_id     INTEGER NOT NULL,
    location_id    INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    expires_at     DATETIME NOT NULL,
    active         BOOLEAN NOT NULL,
    PRIMARY KEY (reservation_id, product_id, location_id),
    FOREIGN KEY (product_id, location_id) REFERENCES stock_levels (product_id, location_id)
) WITHOUT ROWID;
CREATE INDEX reservation_items_level_expiry ON reservation_items (product_id, location_id, expires_at) WHERE active;
CREATE INDEX reservation_items_expiry ON reservation_items (expires_at) WHERE active;

ALTER TABLE stock_levels ADD COLUMN next_expiry DATETIME;
ALTER TABLE stock_movements ADD COLUMN reserved_delta INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stock_movements ADD COLUMN reservation_id INTEGER;
CREATE INDEX stock_movements_reservation ON stock_movements (reservation_id) WHERE reservation_id IS NOT NULL;
