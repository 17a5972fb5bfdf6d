package main

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// tally is what a worker (and, merged, a run) saw.
type tally struct {
	latencies []time.Duration
	outcomes  map[string]int64
	// sold counts OK stock-outs and commits of one unit; unknown counts
	// those whose result never arrived, so the tool cannot tell whether
	// they sold.
	sold, unknown int64
	// held counts OK holds of one unit.
	held int64
	// reads and writes count the requests of each kind.
	reads, writes int64
}

func (t *tally) record(lat time.Duration, kind reqKind, out string) {
	t.latencies = append(t.latencies, lat)
	if t.outcomes == nil {
		t.outcomes = map[string]int64{}
	}
	t.outcomes[out]++
	if kind == kindRead {
		t.reads++
		return
	}
	t.writes++
	switch {
	case kind == kindReserve && out == outcomeOK:
		t.held++
	case kind != kindStockOut && kind != kindCommit:
	case out == outcomeOK:
		t.sold++
	case out == outcomeTransport, out == outcomeBad:
		t.unknown++
	}
}

// merge adds o to t.
func (t *tally) merge(o *tally) {
	t.latencies = append(t.latencies, o.latencies...)
	if t.outcomes == nil {
		t.outcomes = map[string]int64{}
	}
	for k, v := range o.outcomes {
		t.outcomes[k] += v
	}
	t.sold += o.sold
	t.unknown += o.unknown
	t.held += o.held
	t.reads += o.reads
	t.writes += o.writes
}

func (t *tally) requests() int64 { return int64(len(t.latencies)) }

// errors returns the outcomes other than OK.
func (t *tally) errors() map[string]int64 {
	e := maps.Clone(t.outcomes)
	delete(e, outcomeOK)
	return e
}

// percentiles returns the nearest-rank percentiles ps (each in (0, 100]) of
// the latencies, sorting them in place; zero if there are none.
func percentiles(lat []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(lat) == 0 {
		return out
	}
	slices.Sort(lat)
	for i, p := range ps {
		rank := int(math.Ceil(p / 100 * float64(len(lat))))
		out[i] = lat[min(max(rank, 1), len(lat))-1]
	}
	return out
}

// formatCounts renders outcome counts as "CODE n, CODE n", most frequent
// first, or "-" if there are none.
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + thousands(m[k])
	}
	return strings.Join(parts, ", ")
}
