package graph

import (
	"strings"
	"testing"
)

// TestIOFieldsExist keeps the list of traced resolvers true to the schema.
func TestIOFieldsExist(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	for name := range ioFields {
		obj, field, _ := strings.Cut(name, ".")
		def := schema.Types[obj]
		if def == nil || def.Fields.ForName(field) == nil {
			t.Errorf("traced field %s is not in the schema", name)
		}
	}
}
