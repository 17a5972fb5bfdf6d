// Package cpu reads CPU time during a run: the tool's own, the server's
// and the whole machine's, as percentages of one core.
package cpu

import (
	"fmt"
	"time"
)

// Sample is a reading of CPU time: the tool's own, the server's and the
// whole machine's busy time. A negative value is unknown.
type Sample struct {
	at                    time.Time
	tool, server, machine time.Duration
}

// Use is CPU time per wall-clock second during a run, in percent of one
// core as top shows it; negative if unknown.
type Use struct{ tool, server, machine float64 }

// Until is the CPU used from a to b.
func (a Sample) Until(b Sample) Use {
	wall := b.at.Sub(a.at).Seconds()
	pct := func(x, y time.Duration) float64 {
		if x < 0 || y < 0 || wall <= 0 {
			return -1
		}
		return 100 * (y - x).Seconds() / wall
	}
	return Use{tool: pct(a.tool, b.tool), server: pct(a.server, b.server), machine: pct(a.machine, b.machine)}
}

// String renders "tool/server/machine" percentages, "?" where unknown.
func (u Use) String() string {
	f := func(p float64) string {
		if p < 0 {
			return "?"
		}
		return fmt.Sprintf("%.0f%%", p)
	}
	return f(u.tool) + "/" + f(u.server) + "/" + f(u.machine)
}
