package gormstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopstack/inventory/internal/retry"
)

// LastSeq returns the ledger's watermark: every sequence up to it that was
// ever taken is committed or never will be, so a reader that has read the
// ledger up to it has missed nothing below it. On SQLite, where writers
// take turns, it is the last sequence taken.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	if s.driver == Postgres {
		w, err := s.pgWatermark(ctx)
		return w, translate(err)
	}
	var last int64
	err := s.db.WithContext(ctx).Raw("SELECT last FROM ledger_sequence WHERE id = 1").Scan(&last).Error
	return last, translate(err)
}

// slowWatermark is how long a ledger reader waits for writers before the
// store warns: a writer holds the lock for one statement and a commit.
const slowWatermark = time.Second

// pgWatermark reads the last sequence taken, then waits for the ledger
// writers it sees (the holders of pgWritingKey) to end. A writer that took
// a sequence up to that one held the lock before it did, so it is among
// them or has ended: after the wait, every sequence up to it is committed
// or rolled back. Writers hold the lock for one statement and the commit,
// so the wait is short; writers that start meanwhile take higher
// sequences and are not waited for.
func (s *Store) pgWatermark(ctx context.Context) (int64, error) {
	db := s.db.WithContext(ctx)
	var taken int64
	if err := db.Raw("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM ledger_seq").Scan(&taken).Error; err != nil {
		return 0, err
	}
	const holdersSQL = `SELECT coalesce(array_agg(virtualtransaction), '{}') FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = 7460222 AND objid = 'ledger_seq'::regclass::oid AND objsubid = 2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
	m := pgtype.NewMap()
	var holders []string
	if err := db.Raw(holdersSQL).Row().Scan(m.SQLScanner(&holders)); err != nil {
		return 0, err
	}
	wait, start, warned := retry.Doubling(200*time.Microsecond, 5*time.Millisecond), time.Now(), false
	for len(holders) > 0 {
		if !warned && time.Since(start) > slowWatermark {
			warned = true
			s.log.WarnContext(ctx, "ledger readers are waiting for a writer that took sequences and has not ended",
				"waited", time.Since(start).Round(time.Millisecond), "holders", holders,
				"see", "pg_locks.virtualtransaction; a silent client's transaction ends after idle_in_transaction_session_timeout")
		}
		if !retry.Sleep(ctx, wait.NextBackOff()) {
			return 0, ctx.Err()
		}
		if err := db.Raw(holdersSQL+" AND virtualtransaction IN ?", holders).Row().Scan(m.SQLScanner(&holders)); err != nil {
			return 0, err
		}
	}
	return taken, nil
}
