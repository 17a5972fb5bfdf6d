package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// DB names a database the tool may read.
type DB struct {
	Driver string // a database/sql driver: "pgx" or "sqlite"
	DSN    string
}

// Stock returns the products' summed stock and reserved units, read
// through GraphQL, a hundred products a query.
func Stock(ctx context.Context, c *transport.Client, ids []string) (stock, reserved int64, err error) {
	for len(ids) > 0 {
		n := min(len(ids), 100)
		var q strings.Builder
		vars := map[string]any{}
		q.WriteString("query(")
		for i := range n {
			fmt.Fprintf(&q, "$p%d: ID!,", i)
			vars["p"+strconv.Itoa(i)] = ids[i]
		}
		q.WriteString(") {")
		for i := range n {
			fmt.Fprintf(&q, " p%d: product(id: $p%d) { stock reserved }", i, i)
		}
		q.WriteString(" }")
		var out map[string]struct{ Stock, Reserved int64 }
		if err := c.Query(ctx, q.String(), vars, &out); err != nil {
			return 0, 0, fmt.Errorf("read stock: %w", err)
		}
		if len(out) != n {
			return 0, 0, fmt.Errorf("read stock: %d of %d products answered", len(out), n)
		}
		for _, p := range out {
			stock, reserved = stock+p.Stock, reserved+p.Reserved
		}
		ids = ids[n:]
	}
	return stock, reserved, nil
}

// LedgerOuts counts the products' movements that took stock out (OUT and
// COMMIT): with one SQL query if db is known, else by paging through the
// GraphQL ledger.
func LedgerOuts(ctx context.Context, c *transport.Client, db *DB, ids []string) (int64, error) {
	if db != nil {
		if n, ok, err := ledgerOutsSQL(ctx, *db, ids); ok || err != nil {
			return n, err
		}
	}
	var total int64
	for _, id := range ids {
		n, err := ledgerOutsGraphQL(ctx, c, id)
		if err != nil {
			return 0, fmt.Errorf("page ledger of product %s: %w", id, err)
		}
		total += n
	}
	return total, nil
}

// ledgerOutsSQL counts with SQL; ok is false if the IDs are not the
// integers the store uses, so the caller falls back to GraphQL.
func ledgerOutsSQL(ctx context.Context, db DB, ids []string) (n int64, ok bool, err error) {
	list := make([]string, len(ids))
	for i, id := range ids {
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return 0, false, nil
		}
		list[i] = id
	}
	conn, err := sql.Open(db.Driver, db.DSN)
	if err != nil {
		return 0, false, fmt.Errorf("open ledger database: %w", err)
	}
	defer conn.Close()
	// The IDs are integers checked above, so they can be spelled inline.
	q := "SELECT COUNT(*) FROM stock_movements WHERE type IN ('OUT', 'COMMIT') AND product_id IN (" + strings.Join(list, ",") + ")"
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("count ledger: %w", err)
	}
	return n, true, nil
}

// ledgerOutsGraphQL pages through one product's ledger, oldest first.
func ledgerOutsGraphQL(ctx context.Context, c *transport.Client, id string) (int64, error) {
	const q = `query($id: ID!, $after: String) { stockMovements(productId: $id, first: 100, after: $after, order: ASC) {
		edges { node { type } } pageInfo { hasNextPage endCursor } } }`
	var n int64
	var after *string
	for {
		var out struct {
			StockMovements struct {
				Edges    []struct{ Node struct{ Type string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := c.Query(ctx, q, map[string]any{"id": id, "after": after}, &out); err != nil {
			return 0, err
		}
		for _, e := range out.StockMovements.Edges {
			if e.Node.Type == "OUT" || e.Node.Type == "COMMIT" {
				n++
			}
		}
		pi := out.StockMovements.PageInfo
		if !pi.HasNextPage || pi.EndCursor == nil {
			return n, nil
		}
		after = pi.EndCursor
	}
}
