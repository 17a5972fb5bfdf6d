package graph_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/readmodel"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// replica says how startReplica builds a service: one replica of the
// database at dsn, with a read model. Replicas of one test share locker,
// as they would share a lock backend.
type replica struct {
	driver, dsn string
	locker      lock.Locker
	tracer      trace.TracerProvider // nil: none
	now         func() time.Time     // nil: the clock
	poll        time.Duration        // the feed's poll; zero: 20ms
}

// startReplica starts the replica's store, read model and service, all
// stopped when t ends.
func startReplica(t testing.TB, r replica) *app.Service {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: r.driver, DSN: r.dsn, TracerProvider: r.tracer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	view := readmodel.New(readmodel.Config{Source: st})
	if err := view.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(view.Close)
	if r.poll == 0 {
		r.poll = 20 * time.Millisecond
	}
	svc := inventorytest.Start(t, st, app.Config{Locker: r.locker, ReadModel: view, TracerProvider: r.tracer, Now: r.now,
		PollInterval: r.poll, ReapInterval: time.Hour})
	return svc
}
