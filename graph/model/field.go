package model

import (
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// FieldPath is the one rule for naming an input in a BAD_USER_INPUT's
// field: its path within the arguments of the field it was sent to — the
// argument, then the input object's fields and list indexes
// (items[2].locationId) — without the argument name "input" of the
// mutations' input objects.
func FieldPath(args ast.Path) string {
	if len(args) > 1 && args[0] == ast.PathName("input") {
		args = args[1:]
	}
	var b strings.Builder
	for _, el := range args {
		switch el := el.(type) {
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(el))
		case ast.PathName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(el))
		}
	}
	return b.String()
}
