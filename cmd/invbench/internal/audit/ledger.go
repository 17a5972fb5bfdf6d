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

// Held is a product's stock and reserved units, summed over its
// locations.
type Held struct{ Stock, Reserved int64 }

// Sum adds up the products' stock and reserved units.
func Sum(hs []Held) Held {
	var t Held
	for _, h := range hs {
		t.Stock, t.Reserved = t.Stock+h.Stock, t.Reserved+h.Reserved
	}
	return t
}

// Stocks returns each product's stock and reserved units, in the order of
// ids, read through GraphQL, a hundred products a query.
func Stocks(ctx context.Context, c *transport.Client, ids []string) ([]Held, error) {
	out := make([]Held, 0, len(ids))
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
		var read map[string]struct{ Stock, Reserved int64 }
		if err := c.Query(ctx, q.String(), vars, &read); err != nil {
			return nil, fmt.Errorf("read stock: %w", err)
		}
		for i := range n {
			p, ok := read["p"+strconv.Itoa(i)]
			if !ok {
				return nil, fmt.Errorf("read stock: %d of %d products answered", len(read), n)
			}
			out = append(out, Held{Stock: p.Stock, Reserved: p.Reserved})
		}
		ids = ids[n:]
	}
	return out, nil
}

// Outs is what a product's ledger took out: the units of its OUT and
// COMMIT rows, and the count of those rows that name a bundle asked about.
type Outs struct{ Units, BundleRows int64 }

// LedgerOuts sums the units the products' movements took out (OUT and
// COMMIT): with one SQL query if db is known, else by paging through the
// GraphQL ledger.
func LedgerOuts(ctx context.Context, c *transport.Client, db *DB, ids []string) (int64, error) {
	outs, err := Ledger(ctx, c, db, ids, "")
	var total int64
	for _, o := range outs {
		total += o.Units
	}
	return total, err
}

// Ledger returns what each product's ledger took out, in the order of
// ids; bundle, if not empty, is the bundle whose rows to count.
func Ledger(ctx context.Context, c *transport.Client, db *DB, ids []string, bundle string) ([]Outs, error) {
	if db != nil {
		if outs, ok, err := ledgerSQL(ctx, *db, ids, bundle); ok || err != nil {
			return outs, err
		}
	}
	outs := make([]Outs, len(ids))
	for i, id := range ids {
		var err error
		if outs[i], err = ledgerGraphQL(ctx, c, id, bundle); err != nil {
			return nil, fmt.Errorf("page ledger of product %s: %w", id, err)
		}
	}
	return outs, nil
}

// ledgerSQL counts with SQL; ok is false if the IDs are not the integers
// the store uses, so the caller falls back to GraphQL.
func ledgerSQL(ctx context.Context, db DB, graphIDs []string, graphBundle string) (outs []Outs, ok bool, err error) {
	// The store's integers, from the GraphQL IDs.
	ids := make([]string, len(graphIDs))
	for i, id := range graphIDs {
		if ids[i] = strconv.FormatInt(transport.DatabaseID(id), 10); ids[i] == "0" {
			return nil, false, nil
		}
	}
	bundle := ""
	if graphBundle != "" {
		if bundle = strconv.FormatInt(transport.DatabaseID(graphBundle), 10); bundle == "0" {
			return nil, false, nil
		}
	}
	conn, err := sql.Open(db.Driver, db.DSN)
	if err != nil {
		return nil, false, fmt.Errorf("open ledger database: %w", err)
	}
	defer conn.Close()
	// The IDs are integers checked above, so they can be spelled inline. A
	// server from before bundles has no bundle_id, so it is named only
	// when asked about.
	rows := "0"
	if bundle != "" {
		rows = "SUM(CASE WHEN bundle_id = " + bundle + " THEN 1 ELSE 0 END)"
	}
	q := "SELECT product_id, CAST(COALESCE(SUM(-delta), 0) AS BIGINT), " + rows + " FROM stock_movements" +
		" WHERE type IN ('OUT', 'COMMIT') AND product_id IN (" + strings.Join(ids, ",") + ") GROUP BY product_id"
	res, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("count ledger: %w", err)
	}
	defer res.Close()
	byID := map[string]Outs{}
	for res.Next() {
		var id int64
		var o Outs
		if err := res.Scan(&id, &o.Units, &o.BundleRows); err != nil {
			return nil, false, fmt.Errorf("count ledger: %w", err)
		}
		byID[strconv.FormatInt(id, 10)] = o
	}
	if err := res.Err(); err != nil {
		return nil, false, fmt.Errorf("count ledger: %w", err)
	}
	outs = make([]Outs, len(ids))
	for i, id := range ids {
		outs[i] = byID[id]
	}
	return outs, true, nil
}

// ledgerGraphQL pages through one product's ledger, oldest first.
func ledgerGraphQL(ctx context.Context, c *transport.Client, id, bundle string) (Outs, error) {
	node := "type delta"
	if bundle != "" {
		node += " bundle { id }"
	}
	q := `query($id: ID!, $after: String) { stockMovements(productId: $id, first: 100, after: $after, order: ASC) {
		edges { node { ` + node + ` } } pageInfo { hasNextPage endCursor } } }`
	var o Outs
	var after *string
	for {
		var out struct {
			StockMovements struct {
				Edges []struct {
					Node struct {
						Type   string
						Delta  int64
						Bundle *struct{ ID string }
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := c.Query(ctx, q, map[string]any{"id": id, "after": after}, &out); err != nil {
			return Outs{}, err
		}
		for _, e := range out.StockMovements.Edges {
			if n := e.Node; n.Type == "OUT" || n.Type == "COMMIT" {
				o.Units -= n.Delta
				if bundle != "" && n.Bundle != nil && n.Bundle.ID == bundle {
					o.BundleRows++
				}
			}
		}
		pi := out.StockMovements.PageInfo
		if !pi.HasNextPage || pi.EndCursor == nil {
			return o, nil
		}
		after = pi.EndCursor
	}
}
