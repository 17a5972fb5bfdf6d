package inventory

import (
	"encoding/json"
	"errors"
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
// never reaches a client.
func JSONError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return Invalid(BodyField, "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Invalid(BodyField, "the body must be a JSON object")
		}
		return Invalid(typ.Field, "%s must be %s", typ.Field, jsonKind(typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid(BodyField, "the body is empty or cut short")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
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
