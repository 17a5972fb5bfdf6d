package main

import (
	"io"
	"testing"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
)

// TestSoakJudgesTheHeapFloor: a heap that swings with the collector (up to
// GOGC% over what is live) is flat; one whose floor climbs is growing.
func TestSoakJudgesTheHeapFloor(t *testing.T) {
	samples := func(heapMiB ...float64) []soakSample {
		ss := []soakSample{{}} // the first is the baseline, not reported
		for i, h := range heapMiB {
			ss = append(ss, soakSample{at: time.Duration(i+1) * time.Second, goroutines: 90, heap: h * (1 << 20)})
		}
		return ss
	}
	cfg := config{clients: 8, soakSample: time.Second}
	res := load.Result{Elapsed: time.Second}
	// The end-to-end test's samples from a CI run that the means of single
	// samples judged growing (11.4 -> 25.0 MiB).
	if err := soakReport(io.Discard, samples(16.5, 11.4, 17.8, 11.6, 16.8, 25.0), res, cfg); err != nil {
		t.Errorf("a heap swinging with the collector: %v", err)
	}
	if err := soakReport(io.Discard, samples(10, 12, 10, 30, 44, 31, 52, 60), res, cfg); err == nil {
		t.Error("a heap whose floor climbs from 10 to 31 MiB passed as flat")
	}
}
