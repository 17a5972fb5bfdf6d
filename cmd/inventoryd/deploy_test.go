package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/flow"
	"github.com/shopstack/inventory/internal/telemetry"
)

// The deployment files are for people (docker-compose); tests never run
// Docker. These checks keep the files true to the service: the metrics
// the dashboard queries exist, the files compose mounts are in the
// repository, traces go from the replicas to the collector to Jaeger.
// CI also runs `docker-compose config` on the compose file.

const repoRoot = "../.."

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type stats struct{}

func (stats) Subscriptions() int                                { return 0 }
func (stats) ActiveReservations(context.Context) (int64, error) { return 0, nil }

// metricNames returns the names of every metric /metrics can report.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	fc, err := flow.New(context.Background(), flow.Config{Operations: graph.Operations()})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	m := telemetry.NewMetrics()
	m.WatchService(stats{})
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range append(metricCollectors(fc, m), newBrokerMetrics(&broker.Relay{}, nil).collectors()...) {
			c.Describe(ch)
		}
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		if sm := fq.FindStringSubmatch(d.String()); sm != nil {
			names[sm[1]] = true
		}
	}
	return names
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/helm/inventory/files/inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			Type, Title string
			Datasource  struct{ UID string }
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// Grafana's own schema (the foundation SDK is generated from it):
	// every field known, every required one present, values valid.
	plugins.RegisterDefaultPlugins()
	var schema dashboard.Dashboard
	if err := schema.UnmarshalJSONStrict(b); err != nil {
		t.Fatalf("the dashboard does not match Grafana's schema: %v", err)
	}
	if err := schema.Validate(); err != nil {
		t.Fatalf("the dashboard is not valid for Grafana: %v", err)
	}
	var ds struct{ Datasources []struct{ UID string } }
	readYAML(t, "deploy/otel/grafana/provisioning/datasources/prometheus.yaml", &ds)
	if dash.UID == "" || len(ds.Datasources) != 1 {
		t.Fatalf("dashboard uid %q, %d provisioned data sources", dash.UID, len(ds.Datasources))
	}
	known := metricNames(t)
	ident := regexp.MustCompile(`\b(?:inventory|go|process)_[a-z_]+\b`)
	queried := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != ds.Datasources[0].UID || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			for _, name := range ident.FindAllString(q.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q queries %s, which /metrics does not report", p.Title, name)
				}
				queried++
			}
		}
	}
	// The panels: throughput, errors by code, lock wait p99,
	// batch size, low-stock alerts.
	for _, want := range []string{"Throughput", "Errors by code", "Lock wait p99", "Batch size", "Low-stock alerts"} {
		if !slices.ContainsFunc(dash.Panels, func(p struct {
			Type, Title string
			Datasource  struct{ UID string }
			Targets     []struct{ Expr string }
		}) bool {
			return strings.HasPrefix(p.Title, want)
		}) {
			t.Errorf("no %q panel", want)
		}
	}
	t.Logf("%d panels, %d metric references, all known", len(dash.Panels), queried)
}

func TestComposeStack(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string
			Build       any
			Environment map[string]string
			Volumes     []string
			Ports       []string
		}
	}
	readYAML(t, "docker-compose.yml", &compose)
	for _, name := range []string{"inventory-a", "inventory-b", "proxy", "postgres", "redis", "etcd", "nats", "rabbitmq", "kafka", "otel-collector", "jaeger", "prometheus", "grafana"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	for _, name := range []string{"inventory-a", "inventory-b"} {
		env := compose.Services[name].Environment
		if env["INVENTORY_OTLP_ENDPOINT"] != "otel-collector:4317" || env["INVENTORY_DB_DRIVER"] != "postgres" || env["INVENTORY_ADDR"] != ":8080" ||
			env["INVENTORY_AUTH_TOKENS"] == "" || // without tokens a replica would listen on loopback only
			env["INVENTORY_BROKER"] != "${INVENTORY_BROKER:-nats}" || env["INVENTORY_NATS_URL"] != "nats://nats:4222" ||
			!strings.Contains(env["INVENTORY_RABBITMQ_URL"], "@rabbitmq:5672/") || env["INVENTORY_KAFKA_BROKERS"] != "kafka:9092" {
			t.Errorf("%s environment %v", name, env)
		}
	}
	// The replicas reach Kafka where it advertises itself, and it keeps
	// transactions (the event publisher's) with its one replica.
	kafka := compose.Services["kafka"].Environment
	if !strings.Contains(kafka["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://kafka:9092") || kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] != "1" ||
		kafka["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Errorf("kafka environment %v", kafka)
	}
	// Published on loopback unless the operator says otherwise: the demo
	// tokens are public.
	const host = "${INVENTORY_PUBLISH_HOST:-127.0.0.1}:"
	for name, svc := range compose.Services {
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, host) {
				t.Errorf("%s publishes %s on every interface; want %s…", name, p, host)
			}
		}
	}
	if !slices.Contains(compose.Services["jaeger"].Ports, host+"16686:16686") {
		t.Error("Jaeger's UI is not published on 16686")
	}

	var collector struct {
		Exporters map[string]struct{ Endpoint string }
		Service   struct {
			Pipelines map[string]struct{ Receivers, Exporters []string }
		}
	}
	readYAML(t, "deploy/otel/collector.yaml", &collector)
	traces := collector.Service.Pipelines["traces"]
	if !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) != 1 || collector.Exporters[traces.Exporters[0]].Endpoint != "jaeger:4317" {
		t.Errorf("collector traces pipeline %+v, exporters %+v: want OTLP in, Jaeger out", traces, collector.Exporters)
	}

	var prom struct {
		ScrapeConfigs []struct {
			MetricsPath   string                       `json:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "deploy/otel/prometheus.yml", &prom)
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].MetricsPath != "/metrics" ||
		!slices.Equal(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"inventory-a:8080", "inventory-b:8080"}) {
		t.Errorf("Prometheus scrapes %+v, want each replica's /metrics", prom.ScrapeConfigs)
	}
}
