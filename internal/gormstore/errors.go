package gormstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	sqlitedrv "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// sqlStateWriteCheck is raised by stock_write_check (migration 0003).
const sqlStateWriteCheck = "IV001"

// SQLite extended result codes.
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintUnique = 2067
	sqliteConstraintPK     = 1555
	sqliteConstraintFK     = 787
)

// translate turns database errors into what inventory.Store promises:
// *inventory.Error values for what a client can cause or retry, the store
// sentinels, and wrapped internal errors for everything else. Domain errors
// returned by callbacks pass through unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*inventory.Error](err); ok {
		return err
	}
	if errors.Is(err, inventory.ErrVersionConflict) || errors.Is(err, inventory.ErrDuplicateKey) {
		return err
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == sqlStateWriteCheck {
		return inventory.ErrVersionConflict
	}
	if errors.Is(err, dialect.ErrNotWritten) { // SQLite's compare-and-set
		return inventory.ErrVersionConflict
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return inventory.Errorf(inventory.CodeNotFound, "not found")
	}
	if c, ok := uniqueViolation(err); ok {
		switch {
		case strings.Contains(c, "idempotency_key"):
			return inventory.ErrDuplicateKey
		case strings.Contains(c, "sku"):
			return &inventory.Error{Code: inventory.CodeConflict, Field: "sku", Message: "a product with this SKU already exists", Err: err}
		case strings.Contains(c, "code"):
			return &inventory.Error{Code: inventory.CodeConflict, Field: "code", Message: "a location with this code already exists", Err: err}
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return inventory.Unavailable("request cancelled", err)
	case errors.Is(err, context.DeadlineExceeded):
		return inventory.Unavailable("database did not answer in time; retry", err)
	case transient(err):
		return inventory.Unavailable("database unavailable; retry", err)
	}
	return err
}

// uniqueViolation reports which unique constraint err violated: the
// PostgreSQL constraint name or SQLite's "table.dialect.Column" list.
func uniqueViolation(err error) (string, bool) {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	if se, ok := errors.AsType[*sqlitedrv.Error](err); ok {
		if se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPK {
			_, cols, _ := strings.Cut(se.Error(), "constraint failed: ")
			return cols, true
		}
	}
	return "", false
}

// foreignKeyViolation reports whether err violated a foreign key: a row
// referred to one that does not exist.
func foreignKeyViolation(err error) bool {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pe.Code == "23503"
	}
	if se, ok := errors.AsType[*sqlitedrv.Error](err); ok {
		return se.Code() == sqliteConstraintFK
	}
	return false
}

// transient reports whether err is a failure that a retry may not meet:
// lost connections, a busy database, serialization failures.
func transient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		switch pe.Code {
		case "40001", "40P01", "55P03": // serialization failure, deadlock, lock not available
			return true
		}
	}
	if se, ok := errors.AsType[*sqlitedrv.Error](err); ok {
		c := se.Code() & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	return pgconn.SafeToRetry(err)
}
