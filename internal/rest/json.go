package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

const maxBody = 1 << 20

// statuses is the one table from domain error codes to HTTP statuses.
var statuses = map[inventory.Code]int{
	inventory.CodeBadInput:           http.StatusBadRequest,
	inventory.CodeNotFound:           http.StatusNotFound,
	inventory.CodeConflict:           http.StatusConflict,
	inventory.CodeInsufficientStock:  http.StatusConflict,
	inventory.CodeStaleLease:         http.StatusConflict,
	inventory.CodeReservationExpired: http.StatusConflict,
	inventory.CodeRateLimited:        http.StatusTooManyRequests,
	inventory.CodeUnavailable:        http.StatusServiceUnavailable,
	inventory.CodeUnauthenticated:    http.StatusUnauthorized,
	inventory.CodeForbidden:          http.StatusForbidden,
}

type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
	// RetryAfterMs is the hint of RATE_LIMITED and some UNAVAILABLE
	// answers, also sent (in whole seconds) as Retry-After.
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

// fail answers err: domain errors with their status and message, anything
// else as a logged 500 whose text stays in the log.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if failed, ok := r.Context().Value(failedKey{}).(*error); ok {
		*failed = err
	}
	de, ok := errors.AsType[*inventory.Error](err)
	status, known := 0, false
	if ok {
		status, known = statuses[de.Code]
	}
	if !known {
		h.log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, errorBody{Code: string(inventory.CodeInternal), Message: "Internal error."})
		return
	}
	if de.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(de.RetryAfter.Seconds())), 10))
	}
	field := de.Field
	if f, ok := restFields[field]; ok {
		field = f
	}
	writeError(w, status, errorBody{Code: string(de.Code), Message: de.Message, Field: field, Retryable: de.Retryable(), RetryAfterMs: de.RetryAfter.Milliseconds()})
}

// restFields names the service's input fields as these routes' bodies do.
// (The service's messages name its own fields; Field is what a client
// matches on.)
var restFields = map[string]string{
	"quantity":          "count",
	"locationId":        "location",
	"idempotencyKey":    "Idempotency-Key",
	"initialStock":      "stock",
	"initialLocationId": "location",
}

func writeError(w http.ResponseWriter, status int, e errorBody) {
	writeJSON(w, status, map[string]errorBody{"error": e})
}

var errBodyTooLarge = inventory.Invalid(inventory.BodyField, "request body is larger than 1 MiB")

// tooLarge answers 413 for a body over maxBody.
func tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, errorBody{Code: string(errBodyTooLarge.Code), Message: errBodyTooLarge.Message, Field: errBodyTooLarge.Field})
}

// decode reads one JSON object of at most maxBody bytes into v, refusing
// unknown fields and trailing data. It answers the error itself.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		tooLarge(w)
		return false
	}
	if err != nil {
		h.fail(w, r, badInput(inventory.BodyField, "could not read the request body"))
		return false
	}
	dec := newDecoder(body)
	if err := dec.Decode(v); err != nil {
		h.fail(w, r, inventory.JSONError(err))
		return false
	}
	if dec.More() {
		h.fail(w, r, badInput(inventory.BodyField, "request body must hold exactly one JSON object"))
		return false
	}
	return true
}

// newDecoder is how these routes read JSON: unknown fields refused,
// numbers kept as their text.
func newDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec
}

// items decodes list, the body's list field name, one item at a time as
// the body is decoded, so that an error names the item as GraphQL does
// (components[1].quantity). A list in a body is a json.RawMessage read
// through items: that is the one rule for every list of these routes.
func items[T any](name string, list json.RawMessage) ([]T, error) {
	return inventory.JSONItems[T](name, list, func(b []byte, v any) error { return newDecoder(b).Decode(v) })
}

// inItem names err's field as that of item i of the body's list name
// (components[1].productId), for an error about one item of a list.
func inItem(name string, i int, err error) error {
	de, ok := errors.AsType[*inventory.Error](err)
	if !ok || de.Field == "" {
		return err
	}
	in := *de
	in.Field = inventory.ItemField(name, i, de.Field)
	return &in
}

// flexString accepts a JSON string or number and keeps its literal text, so
// "42" and 42 are the same ID and a price never passes through a float.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &json.UnmarshalTypeError{Value: string(b)}
	}
	*f = flexString(n.String())
	return nil
}

// product is a product as the seed's clients read it ({id, name, price,
// stock, threshold}, the id being the SKU and the price a number), and
// more. Stock and available are negative when the product is backordered:
// the seed's fields keep their meaning, units on hand and for sale. A
// bundle's are the bundles its components make.
type product struct {
	ID             string      `json:"id"`
	ProductID      string      `json:"productId"`
	SKU            string      `json:"sku"`
	Name           string      `json:"name"`
	Price          json.Number `json:"price"` // the exact decimal, as a JSON number
	Threshold      int64       `json:"threshold"`
	Stock          int64       `json:"stock"`
	Reserved       int64       `json:"reserved"`
	Available      int64       `json:"available"`
	BackorderLimit int64       `json:"backorderLimit"`
	Backordered    int64       `json:"backordered"`
	Tracked        bool        `json:"tracked"`
	IsBundle       bool        `json:"isBundle"`
	Components     []component `json:"components"` // [] unless a bundle
	LowStock       bool        `json:"lowStock"`
	Version        int64       `json:"version"`
	CreatedAt      time.Time   `json:"createdAt"`
	UpdatedAt      time.Time   `json:"updatedAt"`
}

// component is one product of a bundle.
type component struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

func toProduct(p inventory.Product) product {
	out := product{
		ID: p.SKU, ProductID: strconv.FormatInt(p.ID, 10), SKU: p.SKU, Name: p.Name, Price: json.Number(p.Price.String()), Threshold: p.Threshold,
		Stock: p.Stock, Reserved: p.Reserved, Available: p.Available(), BackorderLimit: p.BackorderLimit, Backordered: p.Backordered,
		Tracked: p.Tracked(), IsBundle: p.Bundle, Components: make([]component, len(p.Components)), LowStock: p.LowStock(),
		Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	for i, c := range p.Components {
		out.Components[i] = component{ProductID: strconv.FormatInt(c.ProductID, 10), Quantity: c.Quantity}
	}
	return out
}

type level struct {
	LocationID  string    `json:"locationId"`
	Stock       int64     `json:"stock"`
	Reserved    int64     `json:"reserved"`
	Available   int64     `json:"available"`
	Backordered int64     `json:"backordered"`
	Version     int64     `json:"version"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func toLevel(l inventory.Level) level {
	return level{LocationID: strconv.FormatInt(l.LocationID, 10), Stock: l.Stock, Reserved: l.Reserved,
		Available: l.Available(), Backordered: l.Backordered(), Version: l.Version, UpdatedAt: l.UpdatedAt}
}

type movement struct {
	ID         string `json:"id"`
	Sequence   int64  `json:"sequence"`
	ProductID  string `json:"productId"`
	LocationID string `json:"locationId"`
	// BundleID is the bundle sold, on a component's row.
	BundleID       string    `json:"bundleId,omitempty"`
	Type           string    `json:"type"`
	Delta          int64     `json:"delta"`
	QuantityAfter  int64     `json:"quantityAfter"`
	AvailableAfter int64     `json:"availableAfter"`
	LowStockAlert  bool      `json:"lowStockAlert"`
	Reason         string    `json:"reason"`
	Reference      string    `json:"reference"`
	Actor          string    `json:"actor"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	LeaseEpoch     int64     `json:"leaseEpoch"`
	LeaseToken     int64     `json:"leaseToken"`
	TraceID        string    `json:"traceId,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
}

func toMovement(m inventory.Movement) movement {
	out := movement{
		ID: strconv.FormatInt(m.Seq, 10), Sequence: m.Seq, ProductID: strconv.FormatInt(m.ProductID, 10),
		LocationID: strconv.FormatInt(m.LocationID, 10), Type: string(m.Type), Delta: m.Delta, QuantityAfter: m.QuantityAfter,
		AvailableAfter: m.AvailableAfter, LowStockAlert: m.LowStockAlert, Reason: m.Reason, Reference: m.Reference,
		Actor: m.Actor, IdempotencyKey: m.IdempotencyKey, LeaseEpoch: m.Fence.Epoch, LeaseToken: m.Fence.Token, TraceID: m.TraceID, CreatedAt: m.CreatedAt,
	}
	if m.BundleID != 0 {
		out.BundleID = strconv.FormatInt(m.BundleID, 10)
	}
	return out
}

// stockResponse is the answer to a stock change: the product as it is
// now, as the seed answered, with the level and the ledger row.
type stockResponse struct {
	product
	Level    level    `json:"level"`
	Movement movement `json:"movement"`
	Replayed bool     `json:"replayed"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
