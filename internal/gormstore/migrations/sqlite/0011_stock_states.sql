-- Quantity states (see the PostgreSQL migration). SQLite adds a column's
-- CHECK only with the column, so the constraint on the sum sits on the
-- last of them.
ALTER TABLE stock_levels ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0 CHECK (damaged >= 0);
ALTER TABLE stock_levels ADD COLUMN quality_control INTEGER NOT NULL DEFAULT 0 CHECK (quality_control >= 0);
ALTER TABLE stock_levels ADD COLUMN incoming INTEGER NOT NULL DEFAULT 0 CHECK (incoming >= 0);
ALTER TABLE stock_levels ADD COLUMN safety_stock INTEGER NOT NULL DEFAULT 0
    CHECK (safety_stock >= 0 AND reserved + damaged + quality_control + safety_stock <= stock);
ALTER TABLE products ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0 CHECK (damaged >= 0);
ALTER TABLE products ADD COLUMN quality_control INTEGER NOT NULL DEFAULT 0 CHECK (quality_control >= 0);
ALTER TABLE products ADD COLUMN incoming INTEGER NOT NULL DEFAULT 0 CHECK (incoming >= 0);
ALTER TABLE products ADD COLUMN safety_stock INTEGER NOT NULL DEFAULT 0
    CHECK (safety_stock >= 0 AND reserved + damaged + quality_control + safety_stock <= stock);

ALTER TABLE stock_movements ADD COLUMN damaged_delta INTEGER;
ALTER TABLE stock_movements ADD COLUMN quality_control_delta INTEGER;
ALTER TABLE stock_movements ADD COLUMN safety_stock_delta INTEGER;
ALTER TABLE stock_movements ADD COLUMN incoming_delta INTEGER;
ALTER TABLE stock_movements ADD COLUMN from_state TEXT
    CHECK (from_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING'));
ALTER TABLE stock_movements ADD COLUMN to_state TEXT
    CHECK (to_state IN ('AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK', 'INCOMING'));
INSERT INTO movement_types (code) VALUES ('MOVE'), ('EXPECT');
