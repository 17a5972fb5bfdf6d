package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/telemetry"
)

// refuseOdd admits every other operation.
type refuseOdd struct{ n int }

func (r *refuseOdd) Admit(context.Context, string, []int64) (func(error), error) {
	r.n++
	if r.n%2 == 0 {
		return nil, &inventory.Error{Code: inventory.CodeRateLimited, Message: "slow down"}
	}
	return func(error) {}, nil
}

func TestRequestMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	adm := m.Admission(&refuseOdd{})
	for i := range 4 {
		done, err := adm.Admit(inventory.WithTransport(context.Background(), "grpc"), "stockOut", []int64{1})
		if err != nil {
			continue
		}
		if i == 2 {
			done(inventory.Errorf(inventory.CodeInsufficientStock, "no"))
		} else {
			done(nil)
		}
	}
	done, _ := adm.Admit(context.Background(), "products", nil)
	done(errors.New("driver: bad connection")) // not an *inventory.Error
	want := `
# HELP inventory_requests_total API operations (GraphQL root fields, REST routes and gRPC methods, named as the GraphQL field) by the transport they came by and outcome: OK or the error code.
# TYPE inventory_requests_total counter
inventory_requests_total{code="INSUFFICIENT_STOCK",operation="stockOut",transport="grpc"} 1
inventory_requests_total{code="INTERNAL_SERVER_ERROR",operation="products",transport="other"} 1
inventory_requests_total{code="OK",operation="stockOut",transport="grpc"} 1
inventory_requests_total{code="RATE_LIMITED",operation="stockOut",transport="grpc"} 2
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "inventory_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "inventory_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want one per operation (2)", n)
	}
}

func TestLockMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	l := telemetry.Locker(memlock.New(0), "memory", nil, m)
	lease, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "k"); err == nil {
		t.Fatal("a held key was acquired")
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, _ = l.Lock(cctx, "k")
	_ = lease.Unlock(context.Background())
	want := `
# HELP inventory_lock_acquisitions_total Stock lock acquisitions by backend and outcome: acquired, timeout, cancelled, unavailable (the backend failed) or refused (its circuit breaker is open).
# TYPE inventory_lock_acquisitions_total counter
inventory_lock_acquisitions_total{backend="memory",outcome="acquired"} 1
inventory_lock_acquisitions_total{backend="memory",outcome="cancelled"} 1
inventory_lock_acquisitions_total{backend="memory",outcome="timeout"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "inventory_lock_acquisitions_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "inventory_lock_wait_seconds"); n != 1 {
		t.Errorf("%d lock wait series, want 1", n)
	}
}

type stats struct{}

func (stats) Subscriptions() int { return 3 }
func (stats) ActiveReservations(context.Context) (int64, error) {
	return 0, errors.New("database away")
}

func TestServiceMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	m.WatchService(stats{})
	m.Committed(5, []inventory.Movement{{Type: inventory.MovementOut}, {Type: inventory.MovementOut, LowStockAlert: true}, {Type: inventory.MovementIn}})
	m.Committed(1, []inventory.Movement{{Type: inventory.MovementReserve}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	want := `
# HELP inventory_low_stock_alerts_total Low-stock alerts raised by changes this replica committed (each alert is raised once, cluster-wide).
# TYPE inventory_low_stock_alerts_total counter
inventory_low_stock_alerts_total 1
# HELP inventory_movements_total Ledger rows committed by this replica, by movement type (IN, OUT, ADJUST, RESERVE, COMMIT, RELEASE, EXPIRE).
# TYPE inventory_movements_total counter
inventory_movements_total{type="IN"} 1
inventory_movements_total{type="OUT"} 2
inventory_movements_total{type="RESERVE"} 1
# HELP inventory_reservations_active Reservations holding stock (status ACTIVE), read from the database at scrape time; -1 if the read failed.
# TYPE inventory_reservations_active gauge
inventory_reservations_active -1
# HELP inventory_subscriptions_active GraphQL subscriptions this replica serves.
# TYPE inventory_subscriptions_active gauge
inventory_subscriptions_active 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "inventory_low_stock_alerts_total", "inventory_movements_total",
		"inventory_reservations_active", "inventory_subscriptions_active"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "inventory_stock_transaction_requests" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 2 || h.GetSampleSum() != 6 {
				t.Errorf("batch sizes: %d transactions, %v requests; want 2 and 6", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Error("no inventory_stock_transaction_requests")
}
