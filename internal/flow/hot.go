package flow

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// hotWindow is how far back the hottest products are counted.
const hotWindow = 10 * time.Second

// hotMaxKeys bounds the products one second's bucket counts; beyond it new
// products of that second are not counted (the hot ones are already in).
const hotMaxKeys = 10000

// HotProduct is one product's stock requests over the last ten seconds on
// this replica.
type HotProduct struct {
	ProductID int64
	Admitted  int64
	Blocked   int64
}

// hotProducts counts requests per product in one-second buckets.
type hotProducts struct {
	mu      sync.Mutex
	buckets [hotWindow / time.Second]hotBucket
}

type hotBucket struct {
	sec    int64
	counts map[int64]*[2]int64 // admitted, blocked
}

func newHotProducts() *hotProducts { return &hotProducts{} }

func (h *hotProducts) add(now time.Time, id int64, blocked bool) {
	sec := now.Unix()
	h.mu.Lock()
	defer h.mu.Unlock()
	b := &h.buckets[sec%int64(len(h.buckets))]
	if b.sec != sec || b.counts == nil {
		b.sec = sec
		clear(b.counts)
		if b.counts == nil {
			b.counts = map[int64]*[2]int64{}
		}
	}
	n := b.counts[id]
	if n == nil {
		if len(b.counts) >= hotMaxKeys {
			return
		}
		n = new([2]int64)
		b.counts[id] = n
	}
	if blocked {
		n[1]++
	} else {
		n[0]++
	}
}

// top returns up to n products with the most requests in the window ending
// at now, most first.
func (h *hotProducts) top(now time.Time, n int) []HotProduct {
	sec := now.Unix()
	sum := map[int64]*HotProduct{}
	h.mu.Lock()
	for i := range h.buckets {
		b := &h.buckets[i]
		if b.counts == nil || sec-b.sec >= int64(len(h.buckets)) || b.sec > sec {
			continue
		}
		for id, c := range b.counts {
			p := sum[id]
			if p == nil {
				p = &HotProduct{ProductID: id}
				sum[id] = p
			}
			p.Admitted += c[0]
			p.Blocked += c[1]
		}
	}
	h.mu.Unlock()
	out := make([]HotProduct, 0, len(sum))
	for _, p := range sum {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b HotProduct) int {
		return cmp.Or(cmp.Compare(b.Admitted+b.Blocked, a.Admitted+a.Blocked), cmp.Compare(a.ProductID, b.ProductID))
	})
	return out[:min(n, len(out))]
}
