// Package model holds the GraphQL transport types: generated inputs and
// payloads, hand-written connection and event types, and the custom scalars.
package model

import (
	"encoding/base64"
	"io"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/shopstack/inventory/internal/inventory"
)

// MarshalDecimal writes a price as a decimal string.
func MarshalDecimal(p inventory.Price) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(p.String()))
	})
}

// UnmarshalDecimal reads a price from a decimal string. Numbers are refused:
// a JSON number may already have passed through a float.
func UnmarshalDecimal(v any) (inventory.Price, error) {
	s, ok := v.(string)
	if !ok {
		return 0, inventory.Errorf(inventory.CodeBadInput, "a Decimal must be a string such as \"12.50\"")
	}
	return inventory.ParsePrice(s)
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// Cursor errors are client errors.
var errBadCursor = inventory.Invalid("after", "after is not a cursor returned by this API")

// EncodeCursor makes an opaque Relay cursor from a kind and a position.
func EncodeCursor(kind string, pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(pos, 10)))
}

// DecodeCursor reverses EncodeCursor; a nil or empty cursor means "from the
// start" (ok is false).
func DecodeCursor(kind string, c *string) (pos int64, ok bool, err error) {
	if c == nil || *c == "" {
		return 0, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil {
		return 0, false, errBadCursor
	}
	num, found := strings.CutPrefix(string(raw), kind+":")
	if pos, err = strconv.ParseInt(num, 10, 64); !found || err != nil || pos < 0 {
		return 0, false, errBadCursor
	}
	return pos, true, nil
}
