-- Ledger sequences come from a sequence instead of the one-row counter that
-- every stock transaction updated and held to its commit, which made the
-- commits of all replicas queue on one row (and on each other's fsync).
--
-- nextval is not transactional: sequences are unique, and increase in
-- commit order for each product (its row is locked from before they are
-- taken to the commit), but across products a transaction may commit after
-- one that took a higher number, and a rolled-back one leaves a hole.
-- Readers that follow the ledger in sequence order therefore read only up
-- to a watermark below which every sequence taken has committed or never
-- will (see the store's pgWatermark): writers hold an advisory lock from
-- just before they take their sequences to their end, and a reader waits
-- for the holders it sees.
--
-- A replica of an earlier version would still update ledger_sequence, so
-- the table goes: such a replica's writes fail instead of numbering rows
-- twice.
CREATE SEQUENCE ledger_seq AS BIGINT MINVALUE 1;
SELECT setval('ledger_seq', greatest(last, 1), last > 0) FROM ledger_sequence;
DROP TABLE ledger_sequence;
