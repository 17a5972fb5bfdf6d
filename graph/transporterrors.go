package graph

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql/errcode"
)

// The status codes of request errors (errors raised before an operation
// runs: no data entry in the answer) follow GraphQL over HTTP (see
// docs/GRAPHQL_HTTP.md):
//
//   - a request that is not a GraphQL request (no query, a body that is not
//     JSON, a query string that does not decode): 400 BAD_REQUEST; a body over
//     MaxBodyBytes: 413; a method or media type no transport takes: 405 or 415;
//   - a well-formed request whose document does not parse or validate, whose
//     variables do not coerce, or that is over the depth or complexity limit:
//     200 answered as application/json (the media type of older clients, which
//     read errors from the body), 400 as application/graphql-response+json.

// documentErrorCodes are the codes of a well-formed request whose document
// is refused before it runs.
var documentErrorCodes = map[string]bool{
	errcode.ParseFailed: true, errcode.ValidationFailed: true,
	complexityLimitCode: true, depthLimitCode: true,
}

const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

func init() {
	// gqlgen answers "protocol" errors with an error status (which
	// codeTransportErrors then sets by the rules above) and, on a
	// WebSocket, with an error message rather than a result: so are the
	// limits' refusals and a request without a query.
	for _, code := range []string{complexityLimitCode, depthLimitCode, badRequestCode} {
		errcode.RegisterErrorType(code, errcode.KindProtocol)
	}
}

// codeTransportErrors answers every request error in one shape, with the
// status of the rules above: it gives an extensions.code to the errors
// gqlgen's transports answer with before any operation runs (no transport
// for the request, a query string that does not decode, a mutation over
// GET), which bypass the error presenter, drops the data entry, and makes
// the body JSON. Streaming requests (WebSocket, SSE) pass through
// untouched.
func codeTransportErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			next.ServeHTTP(w, r)
			return
		}
		cw := &codingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if cw.status != 0 {
			cw.finish(r)
		}
	})
}

// codingWriter holds back an error response (status 400 or more) until the
// handler is done; anything else goes straight through.
type codingWriter struct {
	http.ResponseWriter
	status int // the held-back status; 0 while passing through
	passed bool
	body   bytes.Buffer
}

func (w *codingWriter) WriteHeader(status int) {
	if w.passed || w.status != 0 {
		return
	}
	if status >= 400 {
		w.status = status
		return
	}
	w.passed = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *codingWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		return w.body.Write(b)
	}
	w.passed = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *codingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// transportMessages replace gqlgen's messages for the requests it refuses
// with what a client should do instead.
var transportMessages = map[string]string{
	"transport not supported": "send GraphQL as a POST with Content-Type: application/json, " +
		"a GET with ?query= (queries only), or a WebSocket (graphql-transport-ws)",
	"GET requests only allow query operations": "a mutation must be sent as a POST; GET runs queries only",
}

// answeredError is one error of a request error's answer, as written.
type answeredError struct {
	Message    string          `json:"message"`
	Locations  json.RawMessage `json:"locations,omitempty"`
	Path       json.RawMessage `json:"path,omitempty"`
	Extensions map[string]any  `json:"extensions,omitempty"`
}

// finish writes the held-back error response: a code on every error, no
// data entry, and the status of the rules above.
func (w *codingWriter) finish(r *http.Request) {
	var resp struct {
		Errors []answeredError `json:"errors"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &resp); err != nil || len(resp.Errors) == 0 {
		resp.Errors = []answeredError{{Message: http.StatusText(w.status)}}
	}
	status := w.status
	for i := range resp.Errors {
		e := &resp.Errors[i]
		if e.Extensions["code"] != nil {
			continue
		}
		if m, ok := transportMessages[e.Message]; ok {
			e.Message = m
		} else if strings.HasPrefix(e.Message, "invalid URL escape") || strings.HasPrefix(e.Message, "invalid semicolon") {
			e.Message = "the query string is not valid URL encoding"
		} else if e.Message == "variables could not be decoded" || e.Message == "extensions could not be decoded" {
			e.Message = strings.Replace(e.Message, "could not be decoded", "is not a JSON object", 1)
		}
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions["code"] = badRequestCode
	}
	media := responseMediaType(w.Header(), r)
	switch first := resp.Errors[0]; {
	case first.Message == transportMessages["GET requests only allow query operations"]:
		status = http.StatusMethodNotAllowed // as GraphQL over HTTP asks
		w.Header().Set("Allow", "POST")
	case first.Message == transportMessages["transport not supported"]:
		// Say what was wrong with the request in the status too.
		if r.Method == http.MethodPost {
			status = http.StatusUnsupportedMediaType
		} else {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "GET, POST, OPTIONS")
		}
	case !slices.ContainsFunc(resp.Errors, func(e answeredError) bool { return !documentErrorCodes[codeOf(e)] }):
		status = http.StatusBadRequest
		if media == mediaJSON {
			status = http.StatusOK
		}
	case status == http.StatusUnprocessableEntity:
		status = http.StatusBadRequest // gqlgen's status for a request without a query
	}
	writeRequestErrors(w.ResponseWriter, media, status, resp.Errors)
}

func codeOf(e answeredError) string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// writeRequestErrors answers a request error: {"errors": [...]} with no
// data entry.
func writeRequestErrors(w http.ResponseWriter, media string, status int, errs []answeredError) {
	b, _ := json.Marshal(map[string][]answeredError{"errors": errs}) // strings and raw JSON only
	h := w.Header()
	h.Set("Content-Type", media)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// responseMediaType is the media type of the answer to r: the one a
// transport chose already, else the first of application/json and
// application/graphql-response+json that r accepts, application/json if
// it accepts either (or says nothing).
func responseMediaType(h http.Header, r *http.Request) string {
	if ct, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && (ct == mediaJSON || ct == mediaGraphQLResponse) {
		return ct
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		switch mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt {
		case mediaGraphQLResponse:
			return mediaGraphQLResponse
		case mediaJSON, "application/*", "*/*":
			return mediaJSON
		}
	}
	return mediaJSON
}
