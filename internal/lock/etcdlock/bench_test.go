package etcdlock_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// BenchmarkLockUnlock measures lock+unlock through two replicas (two
// Lockers) with several goroutines each, on distinct keys (no contention)
// and on one key (every acquisition waits its turn), and reports the
// percentiles of the time Lock took.
func BenchmarkLockUnlock(b *testing.B) {
	for _, members := range []int{1, 3} {
		c := etcdtest.Start(b, members)
		replicas := []*etcdlock.Locker{mustNew(b, c, etcdlock.Config{}), mustNew(b, c, etcdlock.Config{})}
		for _, shape := range []string{"distinct", "onekey"} {
			b.Run(fmt.Sprintf("%dmembers/%s", members, shape), func(b *testing.B) {
				benchLockUnlock(b, replicas, shape == "onekey")
			})
		}
	}
}

func benchLockUnlock(b *testing.B, replicas []*etcdlock.Locker, oneKey bool) {
	ctx := context.Background()
	var (
		mu    sync.Mutex
		lats  = make([]time.Duration, 0, b.N)
		next  atomic.Int64
		round = time.Now().UnixNano()
	)
	b.SetParallelism(2) // 2×GOMAXPROCS goroutines over the replicas
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := replicas[next.Add(1)%int64(len(replicas))]
		var mine []time.Duration
		for pb.Next() {
			key := fmt.Sprintf("bench/%d/hot", round)
			if !oneKey {
				key = fmt.Sprintf("bench/%d/%d", round, next.Add(1))
			}
			start := time.Now()
			le, err := l.Lock(ctx, key)
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
			if err := le.Unlock(ctx); err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
