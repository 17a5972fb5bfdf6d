package main

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestDBClock: whatever this host's clock says (skewed here by an hour),
// the service's clock follows the database's.
func TestDBClock(t *testing.T) {
	dbAhead := 5 * time.Minute
	read := func(context.Context) (time.Time, error) { return time.Now().Add(dbAhead), nil }
	c, err := newDBClock(context.Background(), read, -time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.Now().Sub(time.Now().Add(dbAhead)); d > 50*time.Millisecond || d < -50*time.Millisecond {
		t.Errorf("the clock is %v off the database's", d)
	}
}
