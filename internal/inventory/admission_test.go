package inventory_test

import (
	"context"
	"slices"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
)

// askedFlow is flow control that records what it is asked and refuses
// stockIn.
type askedFlow struct{ asked []string }

func (f *askedFlow) Admit(_ context.Context, op string, _ []int64) (func(error), error) {
	f.asked = append(f.asked, op)
	if op == "stockIn" {
		return nil, inventory.Errorf(inventory.CodeRateLimited, "too many")
	}
	return func(error) {}, nil
}

// code is err's code, or "" for none.
func code(err error) inventory.Code {
	if err == nil {
		return ""
	}
	return inventory.ErrorCode(err)
}

// TestGate: the chain authorizes before it asks flow control, which sees
// only what was authorized; a nil Gate authorizes too; a Pass that
// authorization did not give admits nothing.
func TestGate(t *testing.T) {
	anonymous := context.Background()
	reader := inventory.WithPrincipal(anonymous, inventory.Principal{Name: "shelf", Role: inventory.RoleReader})
	operator := inventory.WithPrincipal(anonymous, inventory.Principal{Name: "pos", Role: inventory.RoleOperator})
	flow := &askedFlow{}
	gate := inventory.NewGate(flow)
	for _, c := range []struct {
		ctx  context.Context
		op   string
		want inventory.Code
	}{
		{anonymous, "products", inventory.CodeUnauthenticated},
		{reader, "stockOut", inventory.CodeForbidden},
		{reader, "products", ""},
		{operator, "stockOut", ""},
		{operator, "stockIn", inventory.CodeRateLimited},
	} {
		if _, err := gate.Admit(c.ctx, c.op, []int64{1}); code(err) != c.want {
			t.Errorf("%s: %v, want %q", c.op, err, c.want)
		}
	}
	if want := []string{"products", "stockOut", "stockIn"}; !slices.Equal(flow.asked, want) {
		t.Errorf("flow control asked for %v, want %v", flow.asked, want)
	}

	var none *inventory.Gate
	if _, err := none.Admit(anonymous, "products", nil); code(err) != inventory.CodeUnauthenticated {
		t.Errorf("a nil Gate let an anonymous caller in: %v", err)
	}
	if _, err := none.Admit(operator, "stockIn", nil); err != nil {
		t.Errorf("a nil Gate refused an operator's stockIn: %v", err)
	}
	if _, err := (inventory.Pass{}).Admit(operator, nil); code(err) != inventory.CodeInternal {
		t.Errorf("a Pass not given by authorization admitted: %v", err)
	}
}
