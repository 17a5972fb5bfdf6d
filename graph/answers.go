package graph

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/readlog"
)

// Answers caches the rendered JSON of root query fields answered from the
// read model alone, and serves it again while every product and page of
// IDs it was read from is the read model's current state: a storefront's
// category page is read far more often than its products change, and
// gqlgen spends about 10 µs of CPU per product rendering it.
//
// An answer is cached only if it is safe to: the query asks, at every
// depth, only for fields the read model serves (memoryFields: a product's
// movements come from the database, and are never cached), consistency is
// CACHED, no error was raised under the field, and the read model vouched
// for every read (readlog.Log). It is served only after the field's
// authorization and admission, and only while app.Service.Current
// says its reads are unchanged and none of the reservations it counts has
// expired. A cached answer is exactly what executing the field again would
// render.
type Answers struct {
	svc      *app.Service
	maxBytes int

	mu    sync.Mutex
	lru   *list.List // of *answer, the most recently used first
	byKey map[answerKey]*list.Element
	bytes int

	hits, misses atomic.Int64
}

// answerKey names a root field of one query document and its variables.
type answerKey struct {
	doc, op, vars, alias string
}

type answer struct {
	key  answerKey
	body []byte
	deps readlog.Deps
}

// NewAnswers returns a cache of at most maxBytes of answers.
func NewAnswers(svc *app.Service, maxBytes int) *Answers {
	return &Answers{svc: svc, maxBytes: maxBytes, lru: list.New(), byKey: map[answerKey]*list.Element{}}
}

// AnswerStats describe the cache, for metrics.
type AnswerStats struct {
	Hits, Misses int64
	Answers      int
	Bytes        int
}

// Stats describes the cache now.
func (a *Answers) Stats() AnswerStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AnswerStats{Hits: a.hits.Load(), Misses: a.misses.Load(), Answers: a.lru.Len(), Bytes: a.bytes}
}

var (
	_ graphql.HandlerExtension     = (*Answers)(nil)
	_ graphql.RootFieldInterceptor = (*Answers)(nil)
)

func (*Answers) ExtensionName() string                   { return "Answers" }
func (*Answers) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptRootField serves a cached answer of the field if it is current,
// or runs the field and caches its answer if it may.
func (a *Answers) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	oc, rc := graphql.GetOperationContext(ctx), graphql.GetRootFieldContext(ctx)
	if oc == nil || rc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query ||
		!memoryFields["Query"][rc.Field.Name] || strongRead(oc, rc) || !fromMemory(rc.Field.Field) {
		return next(ctx)
	}
	vars, err := json.Marshal(oc.Variables) // map keys sorted: one text per value
	if err != nil {
		return next(ctx)
	}
	key := answerKey{doc: oc.RawQuery, op: oc.OperationName, vars: string(vars), alias: rc.Field.Alias}
	if body, ok := a.lookup(key); ok {
		a.hits.Add(1)
		return rawJSON(body)
	}
	a.misses.Add(1)
	log := readlog.New()
	m := next(readlog.With(ctx, log))
	if !log.Usable() || erred(ctx, rc.Field.Alias) {
		return m
	}
	var buf bytes.Buffer
	m.MarshalGQL(&buf)
	body := buf.Bytes()
	a.store(&answer{key: key, body: body, deps: log.Deps()})
	return rawJSON(body)
}

// lookup returns the answer of key if it is current, and forgets it if it
// is not.
func (a *Answers) lookup(key answerKey) ([]byte, bool) {
	a.mu.Lock()
	el, ok := a.byKey[key]
	if ok {
		a.lru.MoveToFront(el)
	}
	a.mu.Unlock()
	if !ok {
		return nil, false
	}
	ans := el.Value.(*answer)
	if a.svc.Current(ans.deps) {
		return ans.body, true
	}
	a.mu.Lock()
	if a.byKey[key] == el {
		a.remove(el)
	}
	a.mu.Unlock()
	return nil, false
}

// store caches ans, evicting the least recently used answers beyond the
// cache's size.
func (a *Answers) store(ans *answer) {
	if len(ans.body) > a.maxBytes/8 { // one answer never takes most of the cache
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if el, ok := a.byKey[ans.key]; ok {
		a.remove(el)
	}
	a.byKey[ans.key] = a.lru.PushFront(ans)
	a.bytes += len(ans.body)
	for a.bytes > a.maxBytes {
		a.remove(a.lru.Back())
	}
}

// remove forgets an answer. The caller holds a.mu.
func (a *Answers) remove(el *list.Element) {
	ans := a.lru.Remove(el).(*answer)
	delete(a.byKey, ans.key)
	a.bytes -= len(ans.body)
}

// rawJSON marshals as body, an answer rendered before.
func rawJSON(body []byte) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = w.Write(body) })
}

// erred reports whether an error was raised at or under the root field
// alias.
func erred(ctx context.Context, alias string) bool {
	for _, e := range graphql.GetErrors(ctx) {
		if len(e.Path) > 0 && e.Path[0] == ast.PathName(alias) {
			return true
		}
	}
	return false
}

// strongRead reports whether the root field asks for consistency STRONG.
func strongRead(oc *graphql.OperationContext, rc *graphql.RootFieldContext) bool {
	return rc.Field.ArgumentMap(oc.Variables)["consistency"] == string(model.ReadConsistencyStrong)
}

// memoryFields are the fields whose values the read model serves, by
// type: an answer selecting only these (at every depth) may be cached.
// Anything else, a field added later included, keeps its answer uncached.
var memoryFields = map[string]map[string]bool{
	"Query": {"product": true, "productBySku": true, "products": true, "lowStockProducts": true},
	"Product": {"id": true, "sku": true, "name": true, "price": true, "threshold": true, "stock": true, "reserved": true,
		"available": true, "lowStock": true, "version": true, "createdAt": true, "updatedAt": true, "levels": true},
	"StockLevel":        {"location": true, "stock": true, "reserved": true, "available": true, "version": true, "updatedAt": true},
	"Location":          {"id": true, "code": true, "name": true, "isDefault": true, "createdAt": true},
	"ProductConnection": {"edges": true, "pageInfo": true, "totalCount": true},
	"ProductEdge":       {"cursor": true, "node": true},
	"PageInfo":          {"hasNextPage": true, "hasPreviousPage": true, "startCursor": true, "endCursor": true},
}

// fromMemory reports whether f and everything it selects are memory
// fields.
func fromMemory(f *ast.Field) bool {
	if f.Name != "__typename" && (f.ObjectDefinition == nil || !memoryFields[f.ObjectDefinition.Name][f.Name]) {
		return false
	}
	return selectsFromMemory(f.SelectionSet)
}

func selectsFromMemory(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !fromMemory(s) {
				return false
			}
		case *ast.InlineFragment:
			if s.Directives.ForName("defer") != nil || !selectsFromMemory(s.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if s.Directives.ForName("defer") != nil || s.Definition == nil || !selectsFromMemory(s.Definition.SelectionSet) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
