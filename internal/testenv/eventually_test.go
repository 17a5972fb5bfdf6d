package testenv_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/testenv"
)

func TestPollHolds(t *testing.T) {
	calls := 0
	if !testenv.Poll(testenv.Wait, func() bool { calls++; return calls == 5 }) {
		t.Fatal("Poll gave up on a condition that held")
	}
	if calls != 5 {
		t.Fatalf("cond called %d times, want 5: Poll must stop once it holds", calls)
	}
}

func TestPollGivesUp(t *testing.T) {
	start := time.Now()
	if testenv.Poll(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its 50ms", took)
	}
}

// fatalTB records a Fatalf and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyWithinNamesWhatItWaitedFor(t *testing.T) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.EventuallyWithin(tb, 20*time.Millisecond, "the answer", func() bool { return false })
	}()
	<-done
	if !strings.Contains(tb.msg, "waiting for the answer") {
		t.Fatalf("failure %q does not say what it waited for", tb.msg)
	}
}

func TestEventuallyReturnsOnceItHolds(t *testing.T) {
	tb := &fatalTB{TB: t}
	calls := 0
	testenv.Eventually(tb, "the third call", func() bool { calls++; return calls == 3 })
	if tb.msg != "" || calls != 3 {
		t.Fatalf("failure %q after %d calls, want none after 3", tb.msg, calls)
	}
}
