-- Bundles (see the PostgreSQL migration). SQLite cannot change a primary
-- key, so reservation_items is made anew; no table refers to it. (A test
-- runs it again after running 0013 again, which rebuilds products and
-- stock_movements without its columns.)
ALTER TABLE products ADD COLUMN bundle BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE IF NOT EXISTS bundle_components (
    bundle_id    INTEGER NOT NULL REFERENCES products (id),
    component_id INTEGER NOT NULL REFERENCES products (id),
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (bundle_id, component_id),
    CHECK (bundle_id <> component_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bundle_components_component ON bundle_components (component_id);

ALTER TABLE stock_movements ADD COLUMN bundle_id INTEGER REFERENCES products (id);

CREATE TABLE reservation_items_0014 (
    reservation_id INTEGER NOT NULL REFERENCES reservations (id),
    product_id     INTEGER NOT NULL,
    location_id    INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    expires_at     DATETIME NOT NULL,
    active         BOOLEAN NOT NULL,
    bundle_id      INTEGER NOT NULL DEFAULT 0 CHECK (bundle_id >= 0),
    PRIMARY KEY (reservation_id, product_id, location_id, bundle_id),
    FOREIGN KEY (product_id, location_id) REFERENCES stock_levels (product_id, location_id)
) WITHOUT ROWID;
INSERT INTO reservation_items_0014 (reservation_id, product_id, location_id, quantity, expires_at, active)
    SELECT reservation_id, product_id, location_id, quantity, expires_at, active FROM reservation_items;
DROP TABLE reservation_items;
ALTER TABLE reservation_items_0014 RENAME TO reservation_items;
CREATE INDEX reservation_items_level_expiry ON reservation_items (product_id, location_id, expires_at) WHERE active;
CREATE INDEX reservation_items_expiry ON reservation_items (expires_at) WHERE active;
