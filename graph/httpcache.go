package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// HTTP caching of GET queries, for storefronts behind a CDN: a query over
// GET, from a caller without a token, whose every root field is served
// from the read model (the fields the answer cache may keep, consistency
// CACHED) and which raised no error, answers with Cache-Control: public,
// max-age and an ETag (its body's hash), and a request whose
// If-None-Match names that ETag gets 304 Not Modified. Anything else over
// GET (a STRONG read, a field from the database, an authenticated caller,
// an error) answers Cache-Control: no-store, as POSTs are never cached by
// HTTP. A read model answer is at most as stale as CACHED consistency
// allows plus max-age.

// cacheable collects, during one GET request, whether its answer may be
// cached.
type cacheable struct {
	refused atomic.Bool // a root field that is not a read-model read
	seen    atomic.Bool // at least one root field ran
}

type cacheableKey struct{}

// httpCache answers GET queries with caching headers (see above);
// maxAge 0 turns it off (every GET answers no-store).
func httpCache(maxAge time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || websocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if maxAge <= 0 || r.Header.Get("Authorization") != "" {
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r)
			return
		}
		mark := &cacheable{}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), cacheableKey{}, mark)))
		h := w.Header()
		for k, v := range rec.header {
			h[k] = v
		}
		h.Add("Vary", "Accept")
		if rec.status != http.StatusOK || !mark.seen.Load() || mark.refused.Load() || hasErrors(rec.body.Bytes()) {
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		sum := sha256.Sum256(rec.body.Bytes())
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge.Seconds())))
		h.Set("ETag", etag)
		if matches(r.Header.Get("If-None-Match"), etag) {
			h.Del("Content-Length")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rec.body.Bytes())
	})
}

func websocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// matches reports whether an If-None-Match header names etag (or *).
func matches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// hasErrors reports whether a GraphQL response body carries errors (or
// is not a response).
func hasErrors(body []byte) bool {
	var r struct {
		Errors json.RawMessage `json:"errors"`
	}
	return json.Unmarshal(body, &r) != nil || len(r.Errors) > 0
}

// recorder holds a response until its caching is decided.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// cacheGate marks a GET request's answer not cacheable when one of its
// root fields is not a read-model read.
type cacheGate struct{}

var (
	_ graphql.HandlerExtension     = cacheGate{}
	_ graphql.RootFieldInterceptor = cacheGate{}
)

func (cacheGate) ExtensionName() string                   { return "HTTPCache" }
func (cacheGate) Validate(graphql.ExecutableSchema) error { return nil }

func (cacheGate) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	if mark, ok := ctx.Value(cacheableKey{}).(*cacheable); ok {
		mark.seen.Store(true)
		oc, rc := graphql.GetOperationContext(ctx), graphql.GetRootFieldContext(ctx)
		if oc == nil || rc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query ||
			!memoryFields["Query"][rc.Field.Name] || strongRead(oc, rc) || !fromMemory(rc.Field.Field) {
			mark.refused.Store(true)
		}
	}
	return next(ctx)
}
