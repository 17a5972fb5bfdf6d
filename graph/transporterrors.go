package graph

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// codeTransportErrors gives an extensions.code to the errors gqlgen's
// transports answer with before any operation runs (no transport for the
// request, a query string that does not decode, a mutation over GET),
// which bypass the error presenter, and makes their body JSON. Streaming
// requests (WebSocket, SSE) pass through untouched.
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

type transportError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// finish writes the held-back error response with a code on every error:
// as it was if it has them all already.
func (w *codingWriter) finish(r *http.Request) {
	var resp struct {
		Errors []transportError `json:"errors"`
		Data   json.RawMessage  `json:"data,omitempty"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &resp); err != nil || len(resp.Errors) == 0 {
		resp.Errors = []transportError{{Message: http.StatusText(w.status)}}
	} else if !slices.ContainsFunc(resp.Errors, func(e transportError) bool { return e.Extensions["code"] == nil }) {
		w.ResponseWriter.WriteHeader(w.status)
		_, _ = w.ResponseWriter.Write(w.body.Bytes())
		return
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
		}
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions["code"] = badRequestCode
	}
	if resp.Errors[0].Message == transportMessages["GET requests only allow query operations"] {
		status = http.StatusMethodNotAllowed // as GraphQL over HTTP asks
		w.Header().Set("Allow", "POST")
	}
	if resp.Errors[0].Message == transportMessages["transport not supported"] {
		// Say what was wrong with the request in the status too.
		if r.Method == http.MethodPost {
			status = http.StatusUnsupportedMediaType
		} else {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "GET, POST, OPTIONS")
		}
	}
	b, _ := json.Marshal(resp) // strings and raw JSON only
	h := w.ResponseWriter.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.ResponseWriter.WriteHeader(status)
	_, _ = w.ResponseWriter.Write(append(b, '\n'))
}
