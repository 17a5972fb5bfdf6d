package broker_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestCommandTokens: a command that carries a bearer token acts as the
// token's principal (its role decides, its name is the actor); a refused
// token is the command's outcome, not retried; a command without one acts
// as the consumer's principal.
func TestCommandTokens(t *testing.T) {
	ctx := context.Background()
	svc, _ := inventorytest.Open(t, gormstore.SQLite, app.Config{})
	p, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "TOKEN-1", Name: "Token", Price: 1, InitialStock: 10})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Parse("pos-7:operator:operator-token-0123456789,dash:reader:reader-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator},
		Authenticate: auth.Static(tokens).FromHeader}
	handle := func(id string, header map[string]string) (broker.Outcome, broker.Disposition) {
		t.Helper()
		data := `{"id": "` + id + `", "type": "stockOut", "productId": "` + itoa(p.Product.ID) + `", "quantity": 1}`
		d := c.Handle(ctx, broker.Delivery{Attempt: 1, Data: []byte(data), Header: header})
		var o broker.Outcome
		if err := json.Unmarshal(d.Outcome, &o); err != nil {
			t.Fatalf("%s: outcome %s (%v), disposition %+v", id, d.Outcome, err, d)
		}
		return o, d
	}
	actor := func() string {
		t.Helper()
		page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: p.Product.ID, Limit: 1, Descending: true})
		if err != nil || len(page.Movements) != 1 {
			t.Fatalf("movements: %+v %v", page, err)
		}
		return page.Movements[0].Actor
	}
	if o, _ := handle("with-token", map[string]string{"Authorization": "Bearer operator-token-0123456789"}); !o.OK || actor() != "pos-7" {
		t.Fatalf("a command with an operator's token: %+v, actor %q", o, actor())
	}
	if o, _ := handle("without", nil); !o.OK || actor() != "orders" {
		t.Fatalf("a command without a token: %+v, actor %q", o, actor())
	}
	if o, d := handle("reader", map[string]string{"authorization": "Bearer reader-token-0123456789"}); o.OK || o.Code != "FORBIDDEN" || d.Retry {
		t.Fatalf("a reader's command: %+v %+v", o, d)
	}
	if o, d := handle("forged", map[string]string{"authorization": "Bearer not-a-token"}); o.OK || o.Code != "UNAUTHENTICATED" || d.Retry {
		t.Fatalf("a command with a bad token: %+v %+v", o, d)
	}
}
