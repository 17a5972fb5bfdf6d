package gormstore

import (
	"context"
	"fmt"
	"gorm.io/gorm"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/gormstore/migrations"
)

// HotPathPlans returns the plans that the stock transaction's statements
// get under its plan settings on PostgreSQL: the generic plans cached for
// a connection's lifetime.
func HotPathPlans(ctx context.Context, s *Store) (map[string]string, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	plans := map[string]string{}
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			return err
		}
		defer c.Exec(ctx, "ROLLBACK")
		for _, set := range dialect.PlanSettings {
			if _, err := c.Exec(ctx, set); err != nil {
				return err
			}
		}
		for name, sql := range hotPathStatements() {
			if _, err := c.Exec(ctx, "PREPARE hot AS "+sql); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			rows, err := c.Query(ctx, "EXPLAIN EXECUTE hot("+placeholderArgs(sql)+")")
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			var lines []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				lines = append(lines, line)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			plans[name] = strings.Join(lines, "\n")
			if _, err := c.Exec(ctx, "DEALLOCATE hot"); err != nil {
				return err
			}
		}
		return nil
	})
	return plans, err
}

// hotPathStatements are the statements of a stock transaction on
// PostgreSQL, by name.
func hotPathStatements() map[string]string {
	r, w := pgStockSQL, pgWriteSQL
	return map[string]string{
		"lock products": r.products, "levels": r.levels, "replays": r.replays, "rejections": r.rejections, "write": w.all,
	}
}

// HotPathStatementCount is the number of statements HotPathPlans plans.
func HotPathStatementCount() int { return len(hotPathStatements()) }

var paramCast = regexp.MustCompile(`\$(\d+)::(\w+)(\[\])?`)

// placeholderArgs returns a value for each typed parameter of sql: empty
// arrays, zeros, false and NULL timestamps, in parameter order.
func placeholderArgs(sql string) string {
	byNum := map[string]string{}
	n := 0
	for _, m := range paramCast.FindAllStringSubmatch(sql, -1) {
		v := "0"
		switch {
		case m[3] != "":
			v = "'{}'"
		case m[2] == "boolean":
			v = "false"
		}
		byNum[m[1]] = v
		n = max(n, len(byNum))
	}
	args := make([]string, n)
	for i := range n {
		args[i] = byNum[fmt.Sprint(i+1)]
	}
	return strings.Join(args, ", ")
}

// Exec runs sql on the store's database.
func Exec(ctx context.Context, s *Store, sql string, args ...any) error {
	return s.db.WithContext(ctx).Exec(sql, args...).Error
}

// Migration returns the SQL of the store's migration number version.
func Migration(s *Store, version int) (string, error) {
	all, err := migrations.Load(s.driver)
	if err != nil {
		return "", err
	}
	for _, m := range all {
		if m.Version == version {
			return m.SQL, nil
		}
	}
	return "", fmt.Errorf("no migration %d", version)
}

// Setting returns a run-time parameter of one of the store's connections.
func Setting(ctx context.Context, s *Store, name string) (string, error) {
	var v string
	err := s.db.WithContext(ctx).Raw("SELECT current_setting(?)", name).Scan(&v).Error
	return v, err
}

// Raw runs a query on the store's database and scans its rows into dest.
func Raw(ctx context.Context, s *Store, dest any, sql string, args ...any) error {
	return s.db.WithContext(ctx).Raw(sql, args...).Scan(dest).Error
}

// Rebuild runs sql as the store runs a migration that rebuilds tables.
func Rebuild(ctx context.Context, s *Store, sql string) error {
	return s.rebuild(ctx, func(tx *gorm.DB) error { return tx.Exec(sql).Error })
}
