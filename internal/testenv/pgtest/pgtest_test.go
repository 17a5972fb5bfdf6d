package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestServer starts a server, commits a row, kills the server under an
// open connection, and restarts it: the connection is broken, the row is
// there.
func TestServer(t *testing.T) {
	s := Start(t)
	if strings.HasSuffix(s.Addr, fmt.Sprintf(":%d", sharedPort)) {
		t.Fatalf("started on the shared PostgreSQL port: %s", s.Addr)
	}
	ctx := t.Context()
	conn := connect(t, s.DSN)
	for _, q := range []string{"CREATE TABLE t (v text)", "INSERT INTO t VALUES ('committed')"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var fsync, syncCommit string
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || syncCommit != "on" {
		t.Errorf("fsync=%s synchronous_commit=%s, want both on", fsync, syncCommit)
	}

	s.Kill(t)
	if err := s.ping(time.Second); err == nil {
		t.Fatal("a killed server answers")
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection to a killed server still answers: its backend outlived the postmaster")
	}

	s.Restart(t)
	var v string
	if err := connect(t, s.DSN).QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "committed" {
		t.Fatalf("after restart: %q, %v; want the committed row", v, err)
	}
}

// TestServersAreDistinct starts two servers: each gets its own port.
func TestServersAreDistinct(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers on %s", a.Addr)
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
