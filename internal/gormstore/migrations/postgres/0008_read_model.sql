-- What a per-replica read model needs to follow the database.
--
-- last_seq is the ledger sequence of a product's latest movement: its
-- totals and levels are as of it. A stock transaction writes it with the
-- totals, so a read of a product and its levels in one statement says how
-- new it is, and two reads of one product can be ordered.
--
-- revision numbers product creations and edits in commit order, from the
-- one-row catalog_sequence (whose row lock, held to the commit, orders
-- them as ledger_sequence orders stock changes): a replica finds the
-- products edited elsewhere with revision > the last it saw. Only product
-- mutations take it; stock transactions never do.
ALTER TABLE products ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0);
ALTER TABLE products ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0);
UPDATE products p SET last_seq = coalesce((SELECT max(m.seq) FROM stock_movements m WHERE m.product_id = p.id), 0), revision = p.id;
CREATE INDEX products_revision ON products (revision);

CREATE TABLE catalog_sequence (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL CHECK (last >= 0)
);
INSERT INTO catalog_sequence (id, last) SELECT 1, coalesce(max(revision), 0) FROM products;
