package testenv

import (
	"testing"
	"time"
)

// Wait is how long Eventually waits before it gives up. It guards against a
// hang, it does not measure anything: tests run under -race on small shared
// machines, where a condition that holds in milliseconds on a laptop can take
// seconds, so it is generous.
const Wait = 30 * time.Second

// Eventually polls cond until it holds, and fails tb, naming what it was
// waiting for, if it does not within Wait.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, Wait, what, cond)
}

// EventuallyWithin is Eventually giving up after d, for waits that even a
// generous Wait may cut short (a server's restart behind a client's backoff)
// or that are bounded by what the test checks.
func EventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(d, cond) {
		tb.Fatalf("gave up after %v waiting for %s", d, what)
	}
}

// Poll calls cond until it holds or d passes, and reports whether it held,
// for a test that says in its own words what went wrong, or that counts
// rather than fails a slow outcome. It polls often at first, so a test does
// not wait long for a condition about to hold, and at most every 20 ms
// after, so an expensive cond (a query, a request) does not load the machine
// it waits on.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
	return true
}
