-- Selling beyond the shelf. A product may allow backorders down to
-- -backorder_limit available at each level, or be untracked (never refused
-- for want of stock): a level's on-hand stock may then go below zero, and
-- its reserved and held units above it. The checks that said otherwise
-- give way to one per level: reserved + held <= stock + backorder_limit,
-- where the level keeps its product's limit (written with every write of
-- the level; NULL: untracked, no limit). A product's backordered is the
-- sum over its levels of the units sold or held beyond what was there, so
-- its totals keep reserved + held <= stock + backordered.
ALTER TABLE products
    ADD COLUMN tracked         BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN backorder_limit BIGINT NOT NULL DEFAULT 0 CHECK (backorder_limit >= 0),
    ADD COLUMN backordered     BIGINT NOT NULL DEFAULT 0 CHECK (backordered >= 0),
    DROP CONSTRAINT products_stock_check,
    DROP CONSTRAINT products_check,
    DROP CONSTRAINT products_held_check,
    ADD CONSTRAINT products_reserved_check CHECK (reserved >= 0),
    ADD CONSTRAINT products_held_check CHECK (reserved + damaged + quality_control + safety_stock <= stock + backordered);

ALTER TABLE stock_levels
    ADD COLUMN backorder_limit BIGINT DEFAULT 0 CHECK (backorder_limit >= 0),
    DROP CONSTRAINT stock_levels_stock_check,
    DROP CONSTRAINT stock_levels_check,
    DROP CONSTRAINT stock_levels_held_check,
    ADD CONSTRAINT stock_levels_reserved_check CHECK (reserved >= 0),
    ADD CONSTRAINT stock_levels_held_check
        CHECK (backorder_limit IS NULL OR reserved + damaged + quality_control + safety_stock <= stock + backorder_limit);

-- A row's quantity_after is its level's stock, which may now be negative.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_quantity_after_check;
