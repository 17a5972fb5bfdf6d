package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// countingAdmission admits everything and counts what it admitted.
type countingAdmission struct{ n atomic.Int64 }

func (a *countingAdmission) Admit(context.Context, string, []int64) (func(error), error) {
	a.n.Add(1)
	return func(error) {}, nil
}

// answersEnv is a replica whose GraphQL endpoint caches answers.
type answersEnv struct {
	h       http.Handler
	svc     *app.Service
	answers *graph.Answers
	admit   *countingAdmission
}

func newAnswersEnv(t *testing.T, driver, dsn string, locker lock.Locker, now func() time.Time) answersEnv {
	t.Helper()
	svc := startReplica(t, replica{driver: driver, dsn: dsn, locker: locker, now: now})
	e := answersEnv{svc: svc, answers: graph.NewAnswers(svc, 1<<20), admit: &countingAdmission{}}
	e.h = newHandler(svc, graph.Options{Answers: e.answers, Gate: inventory.NewGate(e.admit)})
	return e
}

// post runs query and returns the response body, failing on errors unless
// errorsOK.
func (e answersEnv) post(t *testing.T, query string, errorsOK bool) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if !errorsOK && strings.Contains(rec.Body.String(), `"errors"`) {
		t.Fatalf("%s: %s", query, rec.Body)
	}
	return rec.Body.String()
}

const answersPage = `{ products(first: 10) { edges { node { sku name available lowStock levels { available location { code } } } } totalCount } }`

// TestAnswers: an answer is served again while what it shows is unchanged,
// and never once it changed: a sale, an edit, a new product, an expiry.
func TestAnswers(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		var mu sync.Mutex
		now := time.Now().UTC()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		e := newAnswersEnv(t, driver, gormstoretest.DSN(t, driver), memlock.New(0), clock)
		ctx := context.Background()
		var ids []int64
		for i := range 3 {
			res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: fmt.Sprintf("ANS-%d", i), Name: "Item", Threshold: 2, InitialStock: 10})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.Product.ID)
		}
		hits := func() int64 { return e.answers.Stats().Hits }
		first := e.post(t, answersPage, false)
		admitted := e.admit.n.Load()
		if again := e.post(t, answersPage, false); again != first || hits() != 1 {
			t.Fatalf("second read: %d hits, answer %s, want the first %s", hits(), again, first)
		}
		if e.admit.n.Load() != admitted+1 {
			t.Fatal("a cached answer was served without admission")
		}
		if exact := e.post(t, strings.Replace(answersPage, "first: 10", "first: 10, consistency: STRONG", 1), false); exact != first {
			t.Fatalf("the cached answer %s differs from an exact read %s", first, exact)
		}

		// A refused sale changes nothing: the answer stays.
		warm := e.post(t, answersPage, false)
		if _, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: ids[1], Quantity: 1000}); inventory.ErrorCode(err) != inventory.CodeInsufficientStock {
			t.Fatalf("a sale of 1000: %v", err)
		}
		before := hits()
		if got := e.post(t, answersPage, false); got != warm || hits() != before+1 {
			t.Fatalf("after a refused sale: %d hits, %s", hits()-before, got)
		}

		changes := []struct {
			what   string
			change func()
			want   string
			// uncached: until the reaper releases an expired reservation,
			// the level's reserved units are checked in the database.
			uncached bool
		}{
			{"a sale", func() {
				if _, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: ids[1], Quantity: 9}); err != nil {
					t.Fatal(err)
				}
			}, `"available":1,"lowStock":true`, false},
			{"an edit", func() {
				name := "Renamed"
				if _, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: ids[2], Name: &name}); err != nil {
					t.Fatal(err)
				}
			}, `"name":"Renamed"`, false},
			{"a new product", func() {
				if _, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "ANS-NEW", Name: "New"}); err != nil {
					t.Fatal(err)
				}
			}, `"totalCount":4`, false},
			{"a reservation", func() {
				if _, err := e.svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Minute,
					Items: []inventory.ReservationItemInput{{ProductID: ids[0], Quantity: 4}}}); err != nil {
					t.Fatal(err)
				}
			}, `"sku":"ANS-0","name":"Item","available":6`, false},
			{"its expiry (no write)", func() {
				mu.Lock()
				now = now.Add(2 * time.Minute)
				mu.Unlock()
			}, `"sku":"ANS-0","name":"Item","available":10`, true},
		}
		for _, c := range changes {
			c.change()
			got := e.post(t, answersPage, false)
			if !strings.Contains(got, c.want) {
				t.Fatalf("after %s: %s, want %s", c.what, got, c.want)
			}
			before := hits()
			if again := e.post(t, answersPage, false); again != got || !c.uncached && hits() != before+1 || c.uncached && hits() != before {
				t.Fatalf("after %s, the new answer was not served again: %d hits, %s", c.what, hits()-before, again)
			}
		}

		// Never cached: the ledger, an exact read, an error.
		stats := e.answers.Stats()
		for range 2 {
			e.post(t, fmt.Sprintf(`{ product(id: "%d") { sku movements(first: 1) { edges { node { sequence } } } } }`, ids[1]), false)
			e.post(t, fmt.Sprintf(`{ product(id: "%d", consistency: STRONG) { sku } }`, ids[1]), false)
			e.post(t, `{ product(id: "999") { sku } }`, true)
		}
		if after := e.answers.Stats(); after.Hits != stats.Hits || after.Answers != stats.Answers {
			t.Fatalf("uncacheable reads were cached: %+v -> %+v", stats, after)
		}
	})
}

// TestAnswersOtherReplica: another replica's sale reaches this replica's
// cached answers as soon as it reaches its read model.
func TestAnswersOtherReplica(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn, locker := gormstoretest.DSN(t, driver), memlock.New(0)
		a := newAnswersEnv(t, driver, dsn, locker, nil)
		b := newAnswersEnv(t, driver, dsn, locker, nil)
		res, err := a.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "SHARED", Name: "x", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf(`{ product(id: "%d") { available } }`, res.Product.ID)
		b.post(t, q, false)
		if _, err := a.svc.StockOut(context.Background(), inventory.StockChange{ProductID: res.Product.ID, Quantity: 3}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "b to answer from after a's sale", func() bool {
			return strings.Contains(b.post(t, q, false), `"available":7`)
		})
	})
}
