package load

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

func TestPercentiles(t *testing.T) {
	t.Run("OneToHundred", func(t *testing.T) {
		lat := make([]time.Duration, 100)
		for i := range lat {
			lat[i] = time.Duration(i + 1)
		}
		rand.Shuffle(len(lat), func(i, j int) { lat[i], lat[j] = lat[j], lat[i] })
		got := Percentiles(lat, 50, 95, 99, 100)
		for i, want := range []time.Duration{50, 95, 99, 100} {
			if got[i] != want {
				t.Errorf("percentile %d = %v, want %v", i, got[i], want)
			}
		}
	})
	t.Run("NearestRank", func(t *testing.T) {
		// Ten values: p50 is the 5th, p95 and p99 the 10th.
		lat := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
		got := Percentiles(lat, 50, 95, 99)
		if got[0] != 5 || got[1] != 10 || got[2] != 10 {
			t.Errorf("got %v, want [5 10 10]", got)
		}
	})
	t.Run("One", func(t *testing.T) {
		got := Percentiles([]time.Duration{7}, 50, 99)
		if got[0] != 7 || got[1] != 7 {
			t.Errorf("got %v, want [7 7]", got)
		}
	})
	t.Run("None", func(t *testing.T) {
		if got := Percentiles(nil, 50); got[0] != 0 {
			t.Errorf("got %v, want 0", got)
		}
	})
}

func TestTally(t *testing.T) {
	var a, b Tally
	a.record(time.Millisecond, kindStockOut, transport.OK)
	a.record(time.Millisecond, kindStockOut, "INSUFFICIENT_STOCK")
	a.record(time.Millisecond, kindRead, transport.OK)
	b.record(time.Millisecond, kindStockOut, transport.NoAnswer)
	b.record(time.Millisecond, kindStockOut, transport.OK)
	b.record(time.Millisecond, kindRead, transport.NoAnswer)
	b.record(2*time.Millisecond, kindTransfer, transport.NoAnswer)
	a.merge(&b)
	if a.Requests() != 7 || a.Sold != 2 || a.Unknown != 1 {
		t.Errorf("requests %d, sold %d, unknown %d; want 7, 2, 1", a.Requests(), a.Sold, a.Unknown)
	}
	if a.Writes != 5 || a.Steps != 1 || len(a.StepLatencies) != 1 || a.StepLatencies[0] != 2*time.Millisecond {
		t.Errorf("writes %d, steps %d (%v); want 5, 1 transfer step", a.Writes, a.Steps, a.StepLatencies)
	}
	if got, want := a.Errors(), map[string]int64{"transport": 3, "INSUFFICIENT_STOCK": 1}; !maps.Equal(got, want) {
		t.Errorf("errors = %v, want %v", got, want)
	}
}
