-- A movement belongs to a stock level: one foreign key to the level instead
-- of one to the product and one to the location (the level references
-- both, and levels are never deleted). Every ledger row pays its foreign-key
-- checks, and under a flash sale they were a quarter of PostgreSQL's time.
-- (SQLite keeps the two keys: it cannot drop a constraint without
-- rebuilding the table, and its checks run in process.)
ALTER TABLE stock_movements
    DROP CONSTRAINT stock_movements_product_id_fkey,
    DROP CONSTRAINT stock_movements_location_id_fkey,
    ADD CONSTRAINT stock_movements_level_fkey FOREIGN KEY (product_id, location_id)
        REFERENCES stock_levels (product_id, location_id);
