-- Bundles: a product made of other products, with no stock of its own. Its
-- composition is fixed when it is created (bundle_components); selling or
-- reserving it takes its components' units, and their ledger rows and
-- reservation items name the bundle (bundle_id; 0 on an item: none). A
-- reservation may hold one level twice, directly and through a bundle, so
-- an item is keyed by the bundle too.
ALTER TABLE products ADD COLUMN bundle BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE bundle_components (
    bundle_id    BIGINT NOT NULL REFERENCES products (id),
    component_id BIGINT NOT NULL REFERENCES products (id),
    quantity     BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (bundle_id, component_id),
    CHECK (bundle_id <> component_id)
);
CREATE INDEX bundle_components_component ON bundle_components (component_id);

ALTER TABLE stock_movements ADD COLUMN bundle_id BIGINT REFERENCES products (id);

ALTER TABLE reservation_items
    ADD COLUMN bundle_id BIGINT NOT NULL DEFAULT 0 CHECK (bundle_id >= 0),
    DROP CONSTRAINT reservation_items_pkey,
    ADD PRIMARY KEY (reservation_id, product_id, location_id, bundle_id);
