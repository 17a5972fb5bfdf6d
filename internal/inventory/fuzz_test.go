package inventory_test

import (
	"errors"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
)

// FuzzParsePrice: a price parses to one value, which prints back to a
// string that parses to the same value; anything else is a BAD_USER_INPUT.
func FuzzParsePrice(f *testing.F) {
	for _, s := range []string{"12.50", "0", "0.000001", "1e3", "-1", "12.5000001", " 3.20 ", "999999999999.999999", "NaN", "१२", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := inventory.ParsePrice(s)
		if err != nil {
			if e, ok := errors.AsType[*inventory.Error](err); !ok || e.Code != inventory.CodeBadInput {
				t.Fatalf("%q: %v is not a BAD_USER_INPUT", s, err)
			}
			return
		}
		again, err := inventory.ParsePrice(p.String())
		if err != nil || again != p {
			t.Fatalf("%q -> %s -> %v, %v", s, p, again, err)
		}
	})
}
