package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// requestHash fingerprints a mutation's input. Two requests with the same
// idempotency key must have the same fingerprint, or the second one is a
// CONFLICT. The operation name is part of it, so a key reused across
// operations conflicts too.
func requestHash(op string, fields ...string) string {
	h := sha256.New()
	h.Write([]byte(op))
	for _, f := range fields {
		// Length-prefix each field so ("ab","c") and ("a","bc") differ.
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func optItoa(p *int64) string {
	if p == nil {
		return "-"
	}
	return itoa(*p)
}

func optString(p *string) string {
	if p == nil {
		return "\x00nil"
	}
	return *p
}

type actorKey struct{}

type transportKey struct{}

// WithTransport returns a context that names the transport a request came
// by (graphql, rest, grpc), for the metrics of the operations it runs.
func WithTransport(ctx context.Context, transport string) context.Context {
	return context.WithValue(ctx, transportKey{}, transport)
}

// TransportFrom returns the transport set by WithTransport, or "".
func TransportFrom(ctx context.Context) string {
	t, _ := ctx.Value(transportKey{}).(string)
	return t
}

// WithActor returns a context that attributes the mutations made with it to
// actor; the name is recorded on ledger rows.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set by WithActor, or "anonymous".
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "anonymous"
}
