package gormstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
)

// inTx runs fn in a read-write transaction, with a runner for its
// statements. On PostgreSQL it runs on a pool connection through pgx
// directly, which pipelines each list in one round trip (database/sql, and
// so GORM, cannot): BEGIN and the first list go together, and the last
// list with COMMIT. On SQLite it runs through GORM in the store's
// immediate transaction, one statement at a time (SQLite runs in process:
// a statement costs no round trip).
func (s *Store) inTx(ctx context.Context, fn func(r dialect.Runner) error) error {
	if s.driver != Postgres {
		return s.write(ctx, func(tx *gorm.DB) error { return fn(dialect.GormRunner{Tx: tx}) })
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		r := dialect.NewPGRunner(ctx, c)
		err := fn(r)
		if err == nil && !r.Committed() {
			err = errors.New("gormstore: transaction ended without a commit")
		}
		if c.PgConn().TxStatus() != 'I' {
			// A failure left the transaction open: end it, or have the pool
			// drop the connection.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
				return errors.Join(err, driver.ErrBadConn)
			}
		}
		return err
	})
	return translate(err)
}
