// Package inventory is the domain: products, locations and their stock
// levels, the movement ledger, reservations, and the rules every stock
// change meets (stockrules.go: idempotency, fencing, final refusals,
// expiry; StockTx.Apply: no oversell; StockSet: every reservation
// transition, decided here and written by the store as told). It defines
// the requests the use cases build (StockOp, LevelsOp), the inputs and
// results of every operation, validation, the coded Error every transport
// maps in one table, the roles and the admission chain (Gate), and the
// small interfaces its users need of a store (Writer, Catalog, Ledger,
// Reservations, Audit).
//
// The use cases that run on it are package app; the machinery they use
// (the write pipeline, the event feed, elected duties) are packages of
// their own. See docs/WRITE_PATH.md.
package inventory
