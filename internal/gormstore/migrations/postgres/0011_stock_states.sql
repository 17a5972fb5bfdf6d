-- Quantity states: a level's on-hand units that are not sellable (damaged,
-- quality control, safety stock) and the units expected at it (incoming,
-- not on hand). available = stock - reserved - damaged - quality_control -
-- safety_stock, and the constraint keeps it from going below zero, as
-- reserved <= stock did.
ALTER TABLE stock_levels
    ADD COLUMN damaged         BIGINT NOT NULL DEFAULT 0 CHECK (damaged >= 0),
    ADD COLUMN quality_control BIGINT NOT NULL DEFAULT 0 CHECK (quality_control >= 0),
    ADD COLUMN safety_stock    BIGINT NOT NULL DEFAULT 0 CHECK (safety_stock >= 0),
    ADD COLUMN incoming        BIGINT NOT NULL DEFAULT 0 CHECK (incoming >= 0),
    ADD CONSTRAINT stock_levels_held_check CHECK (reserved + damaged + quality_control + safety_stock <= stock);
ALTER TABLE products
    ADD COLUMN damaged         BIGINT NOT NULL DEFAULT 0 CHECK (damaged >= 0),
    ADD COLUMN quality_control BIGINT NOT NULL DEFAULT 0 CHECK (quality_control >= 0),
    ADD COLUMN safety_stock    BIGINT NOT NULL DEFAULT 0 CHECK (safety_stock >= 0),
    ADD COLUMN incoming        BIGINT NOT NULL DEFAULT 0 CHECK (incoming >= 0),
    ADD CONSTRAINT products_held_check CHECK (reserved + damaged + quality_control + safety_stock <= stock);

-- The ledger explains every state: a row's change of each (NULL: none, so a
-- sale's row costs no more than before), and the states a move took units
-- from and put them in.
ALTER TABLE stock_movements
    ADD COLUMN damaged_delta         BIGINT,
    ADD COLUMN quality_control_delta BIGINT,
    ADD COLUMN safety_stock_delta    BIGINT,
    ADD COLUMN incoming_delta        BIGINT,
    ADD COLUMN from_state            TEXT CHECK (from_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING')),
    ADD COLUMN to_state              TEXT CHECK (to_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING'));
INSERT INTO movement_types (code) VALUES ('MOVE'), ('EXPECT');
