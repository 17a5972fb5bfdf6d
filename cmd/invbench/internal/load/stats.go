package load

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// Tally is what a worker (and, merged, a run) saw.
type Tally struct {
	Latencies []time.Duration
	// Outcomes counts the requests by outcome: OK, an error code, or
	// another of transport's outcomes.
	Outcomes map[string]int64
	// Sold counts OK stock-outs and commits of one unit; Unknown counts
	// those whose result never arrived, so the tool cannot tell whether
	// they sold.
	Sold, Unknown int64
	// Held counts OK holds of one unit.
	Held int64
	// Reads and Writes count the requests of each kind.
	Reads, Writes int64
	// Steps counts the transfer scenario's transfer requests (create,
	// ship, receive, cancel; among Writes), StepLatencies their latencies
	// (also in Latencies); Moved counts the transfers received in full,
	// MovedUnits their units.
	Steps             int64
	StepLatencies     []time.Duration
	Moved, MovedUnits int64
	// BundleOuts counts the bundle scenario's stock-outs of its bundle
	// (among Writes, not among Sold and Unknown), BundleLatencies their
	// latencies (also in Latencies); Bundles counts the OK ones, of one
	// bundle each, and BundlesUnknown those whose result never arrived.
	BundleOuts, Bundles, BundlesUnknown int64
	BundleLatencies                     []time.Duration
}

func (t *Tally) record(lat time.Duration, kind reqKind, out string) {
	t.Latencies = append(t.Latencies, lat)
	if t.Outcomes == nil {
		t.Outcomes = map[string]int64{}
	}
	t.Outcomes[out]++
	if kind == kindRead {
		t.Reads++
		return
	}
	t.Writes++
	switch kind {
	case kindTransfer:
		t.Steps++
		t.StepLatencies = append(t.StepLatencies, lat)
	case kindBundleOut:
		t.recordBundle(lat, out)
		return
	}
	switch {
	case kind == kindReserve && out == transport.OK:
		t.Held++
	case kind != kindStockOut && kind != kindCommit:
	case out == transport.OK:
		t.Sold++
	case out == transport.NoAnswer, out == transport.BadAnswer:
		t.Unknown++
	}
}

// recordBundle counts a stock-out of the bundle.
func (t *Tally) recordBundle(lat time.Duration, out string) {
	t.BundleOuts++
	t.BundleLatencies = append(t.BundleLatencies, lat)
	switch out {
	case transport.OK:
		t.Bundles++
	case transport.NoAnswer, transport.BadAnswer:
		t.BundlesUnknown++
	}
}

// merge adds o to t.
func (t *Tally) merge(o *Tally) {
	t.Latencies = append(t.Latencies, o.Latencies...)
	if t.Outcomes == nil {
		t.Outcomes = map[string]int64{}
	}
	for k, v := range o.Outcomes {
		t.Outcomes[k] += v
	}
	t.Sold += o.Sold
	t.Unknown += o.Unknown
	t.Held += o.Held
	t.Reads += o.Reads
	t.Writes += o.Writes
	t.Steps += o.Steps
	t.StepLatencies = append(t.StepLatencies, o.StepLatencies...)
	t.Moved += o.Moved
	t.MovedUnits += o.MovedUnits
	t.BundleOuts += o.BundleOuts
	t.Bundles += o.Bundles
	t.BundlesUnknown += o.BundlesUnknown
	t.BundleLatencies = append(t.BundleLatencies, o.BundleLatencies...)
}

// Requests is how many requests were answered or given up on.
func (t *Tally) Requests() int64 { return int64(len(t.Latencies)) }

// Errors returns the outcomes other than OK.
func (t *Tally) Errors() map[string]int64 {
	e := maps.Clone(t.Outcomes)
	delete(e, transport.OK)
	return e
}

// Percentiles returns the nearest-rank percentiles ps (each in (0, 100]) of
// the latencies, sorting them in place; zero if there are none.
func Percentiles(lat []time.Duration, ps ...float64) []time.Duration {
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
