package transport

import (
	"errors"
	"testing"
)

func TestOutcome(t *testing.T) {
	withCode := func(code string) *Response {
		r := &Response{Errors: []gqlError{{Message: "x"}}}
		r.Errors[0].Extensions.Code = code
		return r
	}
	ok := &Response{Data: []byte(`{"stockOut":{"movement":{"sequence":7}}}`)}
	for _, tc := range []struct {
		name   string
		status int
		err    error
		r      *Response
		want   string
	}{
		{"OK", 200, nil, ok, OK},
		{"Code", 200, nil, withCode("INSUFFICIENT_STOCK"), "INSUFFICIENT_STOCK"},
		{"CodeOn4xx", 422, nil, withCode("GRAPHQL_VALIDATION_FAILED"), "GRAPHQL_VALIDATION_FAILED"},
		{"NoCode", 200, nil, withCode(""), "error"},
		{"Transport", 0, errors.New("connection refused"), &Response{}, NoAnswer},
		{"HTTPStatus", 502, errors.New("decode"), &Response{}, "http 502"},
		{"Undecodable", 200, errors.New("decode"), &Response{}, BadAnswer},
		{"NoMovement", 200, nil, &Response{Data: []byte(`{"stockOut":null}`)}, BadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcome(tc.status, tc.err, tc.r, movementField); got != tc.want {
				t.Errorf("outcome = %q, want %q", got, tc.want)
			}
		})
	}
}
