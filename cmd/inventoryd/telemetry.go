package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/telemetry"
)

// observability is what the service reports through: traces (traced is
// nil when tracing is off, so that instrumentation costs nothing) and
// metrics.
type observability struct {
	tel     *telemetry.Telemetry
	traced  trace.TracerProvider
	metrics *telemetry.Metrics
}

// openTelemetry sets up tracing as cfg and the OTEL_* variables say, and
// the metrics.
func openTelemetry(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger) (*observability, error) {
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Endpoint: cfg.OTLPEndpoint, Getenv: getenv,
		ServiceName: "inventory", ServiceVersion: version(), Instance: instance(),
	})
	if err != nil {
		return nil, err
	}
	o := &observability{tel: tel, metrics: telemetry.NewMetrics()}
	if tel.Tracing {
		o.traced = tel.TracerProvider
	}
	log.Info("tracing", "on", tel.Tracing, "endpoint", tracingEndpoint(cfg, getenv))
	return o, nil
}

// shutdown flushes the spans still queued.
func (o *observability) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.tel.Shutdown(ctx); err != nil {
		log.Warn("flushing traces failed", "err", err)
	}
}

func tracingEndpoint(cfg config.Config, getenv func(string) string) string {
	for _, v := range []string{cfg.OTLPEndpoint, getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT")} {
		if v != "" {
			return v
		}
	}
	return ""
}

// version is the build's module version, or its VCS revision.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = s.Value
		}
	}
	return v
}

// buildVersion says what was built: the version, the commit's time (and
// whether the tree had changes), and the Go release.
func buildVersion() string {
	v := version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.time":
			v += " " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			v += " (modified)"
		}
	}
	return v + " " + bi.GoVersion
}

// instance names this replica in traces: host and process.
func instance() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
