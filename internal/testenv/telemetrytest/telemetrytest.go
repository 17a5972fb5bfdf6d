// Package telemetrytest receives and inspects the spans a test makes: an
// OTLP gRPC receiver (what a collector does with an exporter's requests,
// minus the forwarding), and helpers that check a trace's tree whatever
// exporter delivered it.
package telemetrytest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
)

// Span is a received span, reduced to what tests check.
type Span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Server                    bool // SpanKind server
	Attrs                     map[string]string
	Links                     []string // span IDs
	Resource                  map[string]string
	Error                     bool // status Error
	Start, End                time.Time
}

// Receiver is an OTLP/gRPC trace receiver on loopback.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []Span
}

// NewReceiver starts a receiver, stopped when tb ends.
func NewReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Receiver{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(srv.Stop)
	return r
}

// Addr is the receiver's host:port.
func (r *Receiver) Addr() string { return r.addr }

// Export implements the OTLP trace service.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.Add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Add records the spans of an export request.
func (r *Receiver) Add(req *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Name: s.GetName(), Server: s.GetKind() == 2, Attrs: attrs(s.GetAttributes()), Resource: res,
					Error: s.GetStatus().GetCode() == 2,
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.ParentID = hex.EncodeToString(p)
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, hex.EncodeToString(l.GetSpanId()))
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyString(e))
		}
		return strings.Join(parts, ",")
	}
	return ""
}

// FromStubs converts the spans of the SDK's in-memory exporter.
func FromStubs(stubs tracetest.SpanStubs) []Span {
	out := make([]Span, len(stubs))
	for i, s := range stubs {
		sp := Span{
			TraceID: s.SpanContext.TraceID().String(), SpanID: s.SpanContext.SpanID().String(),
			Name: s.Name, Server: s.SpanKind.String() == "server", Attrs: map[string]string{},
			Error: s.Status.Code.String() == "Error", Start: s.StartTime, End: s.EndTime,
		}
		if s.Parent.IsValid() {
			sp.ParentID = s.Parent.SpanID().String()
		}
		for _, kv := range s.Attributes {
			sp.Attrs[string(kv.Key)] = kv.Value.Emit()
			if kv.Value.Type() == attribute.STRINGSLICE {
				sp.Attrs[string(kv.Key)] = strings.Join(kv.Value.AsStringSlice(), ",")
			}
		}
		for _, l := range s.Links {
			sp.Links = append(sp.Links, l.SpanContext.SpanID().String())
		}
		out[i] = sp
	}
	return out
}

// Trace is the spans of one trace, by ID.
type Trace map[string]Span

// TraceOf returns the spans of spans in trace id.
func TraceOf(spans []Span, id string) Trace {
	t := Trace{}
	for _, s := range spans {
		if s.TraceID == id {
			t[s.SpanID] = s
		}
	}
	return t
}

// Find returns the spans of t named name (or, with a trailing "*", whose
// name starts with the rest).
func (t Trace) Find(name string) []Span {
	var out []Span
	for _, s := range t {
		if s.Name == name || strings.HasSuffix(name, "*") && strings.HasPrefix(s.Name, strings.TrimSuffix(name, "*")) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// Under reports whether s descends from the span with ID ancestor.
func (t Trace) Under(s Span, ancestor string) bool {
	for p := s.ParentID; p != ""; p = t[p].ParentID {
		if p == ancestor {
			return true
		}
		if _, ok := t[p]; !ok {
			return false
		}
	}
	return false
}

// String draws t as an indented tree, for failure messages.
func (t Trace) String() string {
	children := map[string][]Span{}
	for _, s := range t {
		parent := s.ParentID
		if _, ok := t[parent]; !ok {
			parent = ""
		}
		children[parent] = append(children[parent], s)
	}
	var b strings.Builder
	var draw func(parent string, depth int)
	draw = func(parent string, depth int) {
		kids := children[parent]
		slices.SortFunc(kids, func(a, b Span) int { return a.Start.Compare(b.Start) })
		for _, s := range kids {
			fmt.Fprintf(&b, "%s%s (%s)\n", strings.Repeat("  ", depth), s.Name, s.End.Sub(s.Start).Round(time.Microsecond))
			draw(s.SpanID, depth+1)
		}
	}
	draw("", 0)
	return b.String()
}
