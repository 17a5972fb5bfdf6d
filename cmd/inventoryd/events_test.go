package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
)

// TestEventsToNATS: with INVENTORY_BROKER=nats the server publishes every
// committed change to JetStream, in order, and /metrics says how far.
func TestEventsToNATS(t *testing.T) {
	url := os.Getenv("INVENTORY_TEST_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.SkipOrFail(t, "NATS is not reachable at "+url+": "+err.Error())
		return
	}
	defer nc.Close()
	stream := fmt.Sprintf("INVTEST_SRV_%d_%d", os.Getpid(), time.Now().UnixNano())
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })

	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_BROKER"] = "nats"
	env["INVENTORY_NATS_URL"] = url
	env["INVENTORY_BROKER_STREAM"] = stream
	env["INVENTORY_BROKER_PREFIX"] = strings.ToLower(stream)
	s := startServer(t, env)
	id := s.createProduct(t, "EVENTS", 10)
	for range 3 {
		s.graphql(t, fmt.Sprintf(`mutation { stockOut(input: {productId: %q, quantity: 1}) { movement { sequence } } }`, id), nil, nil)
	}
	// The creation's IN and three OUTs.
	var last uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := js.Stream(context.Background(), stream); err == nil {
			if info, err := st.Info(context.Background()); err == nil {
				last = info.State.LastSeq
			}
		}
		if last >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last != 4 {
		t.Fatalf("the stream holds %d messages, want 4", last)
	}
	_, body := get(t, s.url+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := sample(mfs["inventory_events_published_sequence"], nil); !ok || got != 4 {
		t.Errorf("inventory_events_published_sequence = %v (found %v), want 4", got, ok)
	}
	// /readyz reports the broker, which it does not require.
	if code, body := get(t, s.url+"/readyz"); code != 200 || !strings.Contains(body, `"broker":"ok"`) {
		t.Errorf("/readyz = %d %s, want ready with the broker ok", code, body)
	}
}
