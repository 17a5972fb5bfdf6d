-- CORRECTION rows are written by repairDrift: they make the ledger explain
-- a level whose stored stock drifted from its history, and bring its
-- reserved units back to what its active reservations hold.
INSERT INTO movement_types (code) VALUES ('CORRECTION');
