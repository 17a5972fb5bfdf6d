package rest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/shopstack/inventory/internal/inventory"
)

// bulkRow is one line's outcome in the answer of POST /stock/bulk.
type bulkRow struct {
	Line     int        `json:"line"` // in the CSV, header included
	SKU      string     `json:"sku"`
	Status   string     `json:"status"`
	Stock    *int64     `json:"stock,omitempty"` // on hand after an applied or replayed line
	Movement *movement  `json:"movement,omitempty"`
	Error    *errorBody `json:"error,omitempty"`
}

type bulkResponse struct {
	Applied  int       `json:"applied"`
	Failed   int       `json:"failed"`
	Rejected bool      `json:"rejected"`
	Rows     []bulkRow `json:"rows"`
}

// stockBulk is POST /stock/bulk: a stock-take as CSV, one line per level,
// "sku,location,quantity" (an optional header line names the columns; an
// empty location is the default one). A quantity is the counted on-hand
// stock; with a sign (+3, -2) it is a change instead. The query's
// errorPolicy, reason and reference, and the Idempotency-Key header, are
// those of bulkAdjustStock. The answer is one result per line; a call that
// REJECT_EVERYTHING rejected answers 409 Conflict.
func (h *Handler) stockBulk(w http.ResponseWriter, r *http.Request) {
	done, err := h.gate.Admit(r.Context(), "bulkAdjustStock", nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status, out, err := h.runStockTake(w, r)
	done(err)
	switch {
	case errors.Is(err, errBodyTooLarge):
		tooLarge(w)
	case err != nil:
		h.fail(w, r, err)
	default:
		writeJSON(w, status, out)
	}
}

// runStockTake reads the CSV of r, runs it, and returns the answer.
func (h *Handler) runStockTake(w http.ResponseWriter, r *http.Request) (int, bulkResponse, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return 0, bulkResponse{}, errBodyTooLarge
	}
	if err != nil {
		return 0, bulkResponse{}, badInput(inventory.BodyField, "could not read the request body")
	}
	items, lines, err := parseStockTake(string(body))
	if err != nil {
		return 0, bulkResponse{}, err
	}
	q := r.URL.Query()
	in := inventory.BulkAdjustment{Items: items, Policy: inventory.BulkErrorPolicy(q.Get("errorPolicy")),
		Reason: q.Get("reason"), Reference: q.Get("reference"), IdempotencyKey: r.Header.Get("Idempotency-Key")}
	res, err := h.svc.BulkAdjustStock(r.Context(), in)
	if err != nil {
		return 0, bulkResponse{}, err
	}
	out := bulkResponse{Applied: res.Applied, Failed: res.Failed, Rejected: res.Rejected, Rows: make([]bulkRow, len(res.Rows))}
	for i, row := range res.Rows {
		br := bulkRow{Line: lines[i], SKU: items[i].SKU, Status: string(row.Status)}
		switch {
		case row.Err != nil:
			br.Error = h.rowError(r, row.Err)
		case row.Status == inventory.BulkApplied || row.Status == inventory.BulkReplayed:
			m := toMovement(row.Result.Movement)
			br.Stock, br.Movement = &row.Result.Level.Stock, &m
		}
		out.Rows[i] = br
	}
	if res.Rejected {
		return http.StatusConflict, out, nil
	}
	return http.StatusOK, out, nil
}

// rowError presents one line's error as fail presents a request's.
func (h *Handler) rowError(r *http.Request, e *inventory.Error) *errorBody {
	if _, known := statuses[e.Code]; !known {
		h.log.ErrorContext(r.Context(), "internal error in a bulk line", "err", e, "path", r.URL.Path)
		return &errorBody{Code: string(inventory.CodeInternal), Message: "Internal error."}
	}
	return &errorBody{Code: string(e.Code), Message: e.Message, Field: e.Field}
}

// parseStockTake reads the CSV of a stock-take into bulk items, and the
// line of each. A malformed line fails the whole file, naming the line.
func parseStockTake(text string) ([]inventory.BulkItem, []int, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var items []inventory.BulkItem
	var lines []int
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, badInput("body", fmt.Sprintf("not CSV: %v", err))
		}
		line, _ := cr.FieldPos(0)
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "sku") {
			continue // the header
		}
		if len(rec) != 3 {
			return nil, nil, badInput("body", fmt.Sprintf("line %d: want 3 fields (sku,location,quantity), got %d", line, len(rec)))
		}
		if len(items) == inventory.MaxBulkItems {
			return nil, nil, badInput("body", fmt.Sprintf("a stock-take has at most %d lines", inventory.MaxBulkItems))
		}
		it := inventory.BulkItem{SKU: strings.TrimSpace(rec[0])}
		if loc := strings.TrimSpace(rec[1]); loc != "" {
			id, err := parseID("location", loc)
			if err != nil {
				return nil, nil, badInput("body", fmt.Sprintf("line %d: location %q is not an ID", line, loc))
			}
			it.LocationID = id
		}
		qty := strings.TrimSpace(rec[2])
		n, err := strconv.ParseInt(qty, 10, 64)
		if err != nil {
			return nil, nil, badInput("body", fmt.Sprintf("line %d: quantity %q is not a whole number", line, qty))
		}
		if strings.HasPrefix(qty, "+") || strings.HasPrefix(qty, "-") {
			it.Delta = &n
		} else {
			it.Quantity = &n
		}
		items, lines = append(items, it), append(lines, line)
	}
	if len(items) == 0 {
		return nil, nil, badInput("body", "the stock-take has no lines")
	}
	return items, lines, nil
}
