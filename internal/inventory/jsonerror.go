package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// BodyField is the Field of a BAD_USER_INPUT about a JSON body as a whole
// (not JSON, not an object, too large), rather than one of its fields.
const BodyField = "body"

// JSONError describes why a JSON body did not decode as a CodeBadInput
// error naming the field at fault (BodyField for the body as a whole), in
// the service's words: encoding/json's text ("json: unknown field …")
// never reaches a client. An *Error (JSONItems') is already in its words.
func JSONError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return jsonError("", err)
}

// JSONItems decodes list, the JSON array given as the list input name,
// one item at a time with decode (the caller's json.Unmarshal, strict or
// not), so that an error names its item as GraphQL does:
// components[1].quantity, where encoding/json says components.quantity
// (and, of an unknown field, names no list at all). An absent or null
// list is no items.
func JSONItems[T any](name string, list json.RawMessage, decode func([]byte, any) error) ([]T, error) {
	if len(list) == 0 || string(list) == "null" {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(list, &raw); err != nil {
		return nil, Invalid(name, "%s must be an array", name)
	}
	items := make([]T, len(raw))
	for i, r := range raw {
		if err := decode(r, &items[i]); err != nil {
			return nil, jsonError(fmt.Sprintf("%s[%d]", name, i), err)
		}
	}
	return items, nil
}

// jsonError is JSONError for a value at path within the body ("" for the
// body itself).
func jsonError(path string, err error) *Error {
	at := func(field string) string {
		switch {
		case path == "":
			return field
		case field == "":
			return path
		}
		return path + "." + field
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return Invalid(BodyField, "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		field := at(typ.Field)
		if field == "" {
			return Invalid(BodyField, "the body must be a JSON object")
		}
		return Invalid(field, "%s must be %s", field, jsonKind(typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid(BodyField, "the body is empty or cut short")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		name = at(name)
		return Invalid(name, "%q is not a field of this request", clip(name, 40))
	}
	return Invalid(BodyField, "the body is not a JSON object of the documented fields")
}

// jsonKind names what a value of t is in JSON.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a string or a number"
	}
	if t == reflect.TypeFor[json.Number]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value of another type"
}
