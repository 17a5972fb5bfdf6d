package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
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

func optBool(p *bool) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatBool(*p)
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

// Fingerprints: what makes two requests with one idempotency key the same
// request (RequestHash). Each input type says which of its fields count.

// Operation names of the product mutations, recorded with their keys.
const (
	OpCreateProduct = "createProduct"
	OpUpdateProduct = "updateProduct"
)

// Fingerprint of a stock-in or stock-out (typ) of in at key.
func (in StockChange) Fingerprint(typ MovementType, key LevelKey) string {
	return requestHash(string(typ), itoa(key.ProductID), itoa(key.LocationID), itoa(in.Quantity), in.Reason, in.Reference)
}

// Fingerprint of an adjustment of in at key.
func (in StockAdjustment) Fingerprint(key LevelKey) string {
	return requestHash(string(MovementAdjust), itoa(key.ProductID), itoa(key.LocationID), itoa(in.Quantity),
		optItoa(in.ChangeFromQuantity), in.Reason, in.Reference)
}

// Fingerprint of a (normalized) new product whose initial stock goes to
// location loc.
func (np NewProduct) Fingerprint(loc int64) string {
	return requestHash(OpCreateProduct, np.SKU, np.Name, np.Price.String(), itoa(np.Threshold), itoa(np.InitialStock), itoa(loc),
		itoa(np.BackorderLimit), strconv.FormatBool(np.Untracked))
}

// Fingerprint of a (normalized) product update.
func (u ProductUpdate) Fingerprint() string {
	var price *string
	if u.Price != nil {
		ps := u.Price.String()
		price = &ps
	}
	return requestHash(OpUpdateProduct, itoa(u.ID), optString(u.SKU), optString(u.Name), optString(price),
		optItoa(u.Threshold), optItoa(u.ExpectedVersion), optItoa(u.BackorderLimit), optBool(u.Tracked))
}

// ReservationFingerprint is the fingerprint of a new reservation of items
// (sorted) for ttl.
func ReservationFingerprint(items []ReservationItem, ttl time.Duration, reference string) string {
	fields := []string{strconv.FormatInt(int64(ttl/time.Millisecond), 10), reference}
	for _, it := range items {
		fields = append(fields, itoa(it.ProductID), itoa(it.LocationID), itoa(it.Quantity))
	}
	return requestHash("reserveStock", fields...)
}

// Fingerprint of a bulk adjustment as a whole (its items' fingerprints
// include it).
func (in BulkAdjustment) Fingerprint() string {
	return requestHash("bulkAdjustStock", string(in.Policy), in.Reason, in.Reference, itoa(int64(len(in.Items))))
}

// Fingerprint of item i of the bulk adjustment whose fingerprint is call,
// at key.
func (it BulkItem) Fingerprint(call string, i int, key LevelKey) string {
	return requestHash(call, itoa(int64(i)), itoa(key.ProductID), itoa(key.LocationID), optItoa(it.Delta), optItoa(it.Quantity), optItoa(it.ChangeFromQuantity))
}

// SumLines merges the lines of lines (sorted by key) that share a key into
// one, whose quantity is their sum: two lines of one level (or product)
// are one demand, judged on the sum, never each against what the other
// has not taken yet.
func SumLines[T any, K comparable](lines []T, key func(T) K, quantity func(*T) *int64) []T {
	out := lines[:0]
	for _, l := range lines {
		if n := len(out); n > 0 && key(out[n-1]) == key(l) {
			*quantity(&out[n-1]) += *quantity(&l)
			continue
		}
		out = append(out, l)
	}
	return out
}
