package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestStockTakeCSV(t *testing.T) {
	e := newEnv(t)
	for _, sku := range []string{"MUG", "CAP"} {
		if r := e.do(t, "POST", "/product", `{"sku":"`+sku+`","name":"N","price":"1.00","stock":10}`); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", sku, r.status, r.raw)
		}
	}
	csv := "sku,location,quantity\nMUG,,25\nCAP,1,-4\nHAT,,3\nMUG,,7\n"
	r := e.do(t, "POST", "/stock/bulk?errorPolicy=REJECT_FAILED_ROWS&reference=count-7", csv, "Content-Type", "text/csv", "Idempotency-Key", "count-7")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r.body["applied"] != 2.0 || r.body["failed"] != 2.0 {
		t.Errorf("applied %v, failed %v; want 2 and 2", r.body["applied"], r.body["failed"])
	}
	rows := r.body["rows"].([]any)
	want := []struct {
		line   float64
		status string
		stock  float64
		code   string
	}{{2, "APPLIED", 25, ""}, {3, "APPLIED", 6, ""}, {4, "FAILED", 0, "NOT_FOUND"}, {5, "FAILED", 0, "BAD_USER_INPUT"}}
	for i, w := range want {
		row := rows[i].(map[string]any)
		got := fmt.Sprint(row["line"], row["status"], row["stock"], row["error"])
		if row["line"] != w.line || row["status"] != w.status || (w.code == "" && row["stock"] != w.stock) ||
			(w.code != "" && row["error"].(map[string]any)["code"] != w.code) {
			t.Errorf("row %d: %s", i, got)
		}
	}
	// A retry with the key replays; the default policy rejects the file
	// (409) and changes nothing.
	r = e.do(t, "POST", "/stock/bulk?errorPolicy=REJECT_FAILED_ROWS&reference=count-7", csv, "Idempotency-Key", "count-7")
	if rows := r.body["rows"].([]any); rows[0].(map[string]any)["status"] != "REPLAYED" {
		t.Errorf("retry: %s", r.raw)
	}
	r = e.do(t, "POST", "/stock/bulk", "MUG,,1\nHAT,,1\n")
	if r.status != http.StatusConflict || r.body["rejected"] != true {
		t.Errorf("rejected file: %d %s", r.status, r.raw)
	}
	if p := e.do(t, "GET", "/product?sku=MUG", ""); field(t, p.body, "stock") != 25.0 {
		t.Errorf("MUG after a rejected file: %s", p.raw)
	}

	for name, body := range map[string]string{
		"no lines":       "sku,location,quantity\n",
		"two fields":     "MUG,5\n",
		"bad quantity":   "MUG,,ten\n",
		"bad location":   "MUG,main,1\n",
		"too many lines": strings.Repeat("MUG,,1\n", 1001),
	} {
		if r := e.do(t, "POST", "/stock/bulk", body); r.status != http.StatusBadRequest || r.errCode() != "BAD_USER_INPUT" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
}
