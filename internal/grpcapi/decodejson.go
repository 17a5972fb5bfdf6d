package grpcapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shopstack/inventory/internal/inventory"
)

// jsonFault describes a Connect JSON request that does not decode as msg,
// naming the field at fault by its proto path (items[0].location_id): the
// request is walked against msg's descriptor, in our words, for the first
// value protojson refuses. Nil if the walk finds none.
func jsonFault(msg proto.Message, data []byte) *inventory.Error {
	desc := msg.ProtoReflect().Descriptor()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return inventory.Invalid(inventory.BodyField, "the request is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return inventory.Invalid(inventory.BodyField, "the request is not valid JSON: more follows its object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return inventory.Invalid(inventory.BodyField, "the request must be a JSON object")
	}
	return objectFault(desc, obj, "")
}

// objectFault walks obj as a message of type m at path.
func objectFault(m protoreflect.MessageDescriptor, obj map[string]any, path string) *inventory.Error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := m.Fields().ByJSONName(k)
		if f == nil {
			f = m.Fields().ByName(protoreflect.Name(k))
		}
		v := obj[k]
		if f == nil || v == nil {
			continue // unknown fields are dropped; null is the default
		}
		at := string(f.Name())
		if path != "" {
			at = path + "." + at
		}
		switch {
		case f.IsMap():
			if _, ok := v.(map[string]any); !ok {
				return inventory.Invalid(at, "%s must be an object", at)
			}
		case f.IsList():
			list, ok := v.([]any)
			if !ok {
				return inventory.Invalid(at, "%s must be a list", at)
			}
			for i, e := range list {
				if fault := valueFault(f, e, fmt.Sprintf("%s[%d]", at, i)); fault != nil {
					return fault
				}
			}
		default:
			if fault := valueFault(f, v, at); fault != nil {
				return fault
			}
		}
	}
	return nil
}

// valueFault checks one value of field f at path.
func valueFault(f protoreflect.FieldDescriptor, v any, path string) *inventory.Error {
	bad := func(what string) *inventory.Error { return inventory.Invalid(path, "%s must be %s", path, what) }
	switch f.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return bad("true or false")
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok || !isBase64(s) {
			return bad("base64 text")
		}
	case protoreflect.EnumKind:
		return enumFault(f.Enum(), v, path)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if !isInteger(v, math.MinInt32, math.MaxInt32) {
			return bad("a whole number (32 bits)")
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if !isInteger(v, math.MinInt64, math.MaxInt64) {
			return bad("a whole number")
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if !isInteger(v, 0, math.MaxUint32) {
			return bad("a whole number of at least 0 (32 bits)")
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if !isInteger(v, 0, math.MaxUint64) {
			return bad("a whole number of at least 0")
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if !isNumber(v) {
			return bad("a number")
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if strings.HasPrefix(string(f.Message().FullName()), "google.protobuf.") {
			return nil // well-known types have JSON forms of their own
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		return objectFault(f.Message(), obj, path)
	}
	return nil
}

// enumFault checks an enum value: one of its names, or a number.
func enumFault(e protoreflect.EnumDescriptor, v any, path string) *inventory.Error {
	switch v := v.(type) {
	case string:
		if e.Values().ByName(protoreflect.Name(v)) != nil {
			return nil
		}
	case json.Number:
		if isInteger(v, math.MinInt32, math.MaxInt32) {
			return nil
		}
	}
	names := make([]string, e.Values().Len())
	for i := range names {
		names[i] = string(e.Values().Get(i).Name())
	}
	return inventory.Invalid(path, "%s must be one of %s", path, strings.Join(names, ", "))
}

// isInteger reports whether v, a JSON number or a string of one (as
// protojson takes 64-bit integers), is a whole number within [lo, hi].
func isInteger(v any, lo, hi float64) bool {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return float64(n) >= lo && float64(n) <= hi
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return float64(n) <= hi
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == math.Trunc(f) && f >= lo && f <= hi
}

// isNumber reports whether v is a JSON number or a string protojson reads
// as one.
func isNumber(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return true
	case string:
		if v == "NaN" || v == "Infinity" || v == "-Infinity" {
			return true
		}
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	}
	return false
}

func isBase64(s string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}
