-- What a hold writes besides its ledger row, cut to what guards something.
-- Checks PostgreSQL runs per inserted row are most of what a hold costs it
-- beyond a stock-out (docs/BENCHMARKS.md, "What a hold writes").
--
-- A reservation item's foreign keys: the store writes an item in the one
-- statement that writes its reservation and its level, and neither
-- reservations nor levels are ever deleted. Each key cost a lookup per item
-- and, for the reservation, a row lock (a WAL record) on a row the same
-- statement had just inserted.
ALTER TABLE reservation_items
    DROP CONSTRAINT reservation_items_reservation_id_fkey,
    DROP CONSTRAINT reservation_items_product_id_location_id_fkey;

-- A reservation's idempotency key K is unique through its ledger row,
-- which records "reserve:K" under the ledger's own unique key (0009); no
-- query looks a reservation up by its key.
ALTER TABLE reservations DROP CONSTRAINT reservations_idempotency_key_key;

-- A movement's type: a CHECK, evaluated in the row, instead of a foreign
-- key to movement_types, which looked the type up for every ledger row and
-- locked its row in every transaction. A new type changes this list. Rows
-- written so far passed the foreign key, so the list is not checked
-- against them again (NOT VALID: no scan of the ledger while it is locked).
ALTER TABLE stock_movements
    DROP CONSTRAINT stock_movements_type_fkey,
    ADD CONSTRAINT stock_movements_type_check CHECK (type IN ('IN', 'OUT', 'ADJUST', 'RESERVE', 'COMMIT', 'RELEASE',
        'EXPIRE', 'CORRECTION', 'MOVE', 'EXPECT', 'SHIP', 'RECEIVE', 'RETURN')) NOT VALID;
DROP TABLE movement_types;
