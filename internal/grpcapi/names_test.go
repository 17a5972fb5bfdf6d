package grpcapi

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// TestProtoPathNamesEveryProtoField holds protoPath to the proto: the
// camelCase name of every field of every message (its JSON name, the
// service's name for it) becomes the field's own name, so a new field
// cannot be named otherwise to a gRPC client.
func TestProtoPathNamesEveryProtoField(t *testing.T) {
	n := 0
	var check func(msgs protoreflect.MessageDescriptors)
	check = func(msgs protoreflect.MessageDescriptors) {
		for i := range msgs.Len() {
			m := msgs.Get(i)
			for j := range m.Fields().Len() {
				f := m.Fields().Get(j)
				n++
				if got := protoPath(f.JSONName()); got != string(f.Name()) {
					t.Errorf("%s: protoPath(%q) = %q, want %q", f.FullName(), f.JSONName(), got, f.Name())
				}
			}
			check(m.Messages())
		}
	}
	check(v1.File_inventory_v1_inventory_proto.Messages())
	if n == 0 {
		t.Fatal("no fields checked")
	}
	if got := protoPath("items[0].locationId"); got != "items[0].location_id" {
		t.Errorf("protoPath(items[0].locationId) = %q", got)
	}
}
