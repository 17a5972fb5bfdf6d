//go:build faults

package faults

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/shopstack/inventory/internal/retry"
)

// dbProxy is a toxiproxy proxy, run in the test process, in front of a
// PostgreSQL server: a replica given its DSN reaches the database through
// it, and the case adds toxics to its connections.
type dbProxy struct {
	// DSN is the server's DSN with the proxy's address.
	DSN string
	p   *toxiproxy.Proxy
}

// newDBProxy starts a proxy to the server of dsn, stopped when the test
// ends.
func newDBProxy(t *testing.T, dsn string) *dbProxy {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	p := toxiproxy.NewProxy(srv, "postgres", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	u.Host = p.Listen
	return &dbProxy{DSN: u.String(), p: p}
}

// toxics adds each toxic (toxiproxy's JSON), waits d or until ctx ends,
// and removes them.
func (p *dbProxy) toxics(ctx context.Context, t *testing.T, d time.Duration, specs ...string) {
	var names []string
	for _, spec := range specs {
		w, err := p.p.Toxics.AddToxicJson(strings.NewReader(spec))
		if err != nil {
			t.Errorf("toxic %s: %v", spec, err)
			continue
		}
		names = append(names, w.Name)
	}
	retry.Sleep(ctx, d)
	for _, name := range names {
		if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
			t.Errorf("remove toxic %s: %v", name, err)
		}
	}
}
