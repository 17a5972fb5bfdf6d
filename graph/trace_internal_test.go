package graph

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/shopstack/inventory/internal/inventory"
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

// TestEveryRootFieldHasARole keeps the role table true to the schema: a
// new root field must be given a role on purpose (unlisted ones need
// admin), and no role is left for a field that is gone.
func TestEveryRootFieldHasARole(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	roles := inventory.OperationRoles()
	for _, typ := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		for _, f := range typ.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if _, ok := roles[f.Name]; !ok {
				t.Errorf("%s.%s has no role in inventory's operation table", typ.Name, f.Name)
			}
			delete(roles, f.Name)
		}
	}
	for op := range roles {
		t.Errorf("the role table names %s, which is no root field", op)
	}
}
