package graph

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// Defaults of the request limits.
const (
	// DefaultMaxDepth bounds how deeply an operation nests its selections
	// (introspection aside).
	DefaultMaxDepth = 10
	// DefaultMaxComplexity bounds an operation's cost: a field costs 1,
	// a page costs its first argument times what each item selects. It
	// bounds the size of an answer, not its statements (nested fields load
	// in batches): a storefront page of 100 products with their levels and
	// 5 movements each costs about 5,100.
	DefaultMaxComplexity = 10000
	// MaxBodyBytes bounds the body of a GraphQL request.
	MaxBodyBytes = 1 << 20
)

// Limits bound what one request may ask.
type Limits struct {
	MaxDepth      int // 0: DefaultMaxDepth
	MaxComplexity int // 0: DefaultMaxComplexity
	// NoIntrospection refuses __schema and __type queries.
	NoIntrospection bool
}

// complexity prices each page by its first argument.
func complexity() ComplexityRoot {
	var c ComplexityRoot
	page := func(child int, first *int64, def int64) int {
		n := def
		if first != nil && *first > 0 {
			n = *first
		}
		return 1 + child*int(min(n, inventory.MaxPageSize))
	}
	c.Query.Products = func(child int, first *int64, _ *string, _ *model.ProductFilter, _ *model.ReadConsistency) int {
		return page(child, first, 20)
	}
	c.Query.LowStockProducts = func(child int, first *int64, _ *model.ReadConsistency) int { return page(child, first, 100) }
	c.Query.StockMovements = func(child int, _, _ *model.ID, first *int64, _ *string, _ *model.SortOrder) int {
		return page(child, first, 50)
	}
	c.Query.Reservations = func(child int, _ *inventory.ReservationStatus, first *int64, _ *string) int {
		return page(child, first, 20)
	}
	// node and nodes, and federation's _entities, cost what each object
	// they return selects.
	c.Query.Nodes = func(child int, ids []*model.ID) int { return 1 + child*len(ids) }
	c.Query.__resolve_entities = func(child int, reps []map[string]any) int { return 1 + child*len(reps) }
	c.Product.Movements = func(child int, first *int64, _ *string, _ *model.SortOrder) int { return page(child, first, 50) }
	return c
}

const (
	depthLimitCode      = "DEPTH_LIMIT_EXCEEDED"
	complexityLimitCode = "COMPLEXITY_LIMIT_EXCEEDED" // gqlgen's extension.ComplexityLimit's
)

// depthLimit refuses operations nested deeper than max.
type depthLimit struct{ max int }

var (
	_ graphql.HandlerExtension        = depthLimit{}
	_ graphql.OperationContextMutator = depthLimit{}
)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0); depth > d.max {
		err := gqlerror.Errorf("operation is nested %d levels deep, more than the limit of %d", depth, d.max)
		errcode.Set(err, depthLimitCode)
		return err
	}
	return nil
}

// selectionDepth is the depth of the deepest field in set, fragments
// followed; introspection fields do not count.
func selectionDepth(set ast.SelectionSet, depth int) int {
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = selectionDepth(s.SelectionSet, depth+1)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, depth)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// useLimits installs the depth and complexity limits, and introspection
// unless it is off.
func useLimits(srv interface {
	Use(graphql.HandlerExtension)
}, l Limits) {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxComplexity <= 0 {
		l.MaxComplexity = DefaultMaxComplexity
	}
	if !l.NoIntrospection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(depthLimit{max: l.MaxDepth})
	srv.Use(extension.FixedComplexityLimit(l.MaxComplexity))
}

// requireQuery refuses a request without a query (once automatic
// persisted queries had their chance to fill it in) as not a GraphQL
// request, rather than as a document without an operation.
type requireQuery struct{}

var (
	_ graphql.HandlerExtension          = requireQuery{}
	_ graphql.OperationParameterMutator = requireQuery{}
)

func (requireQuery) ExtensionName() string                   { return "RequireQuery" }
func (requireQuery) Validate(graphql.ExecutableSchema) error { return nil }

func (requireQuery) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if strings.TrimSpace(p.Query) != "" {
		return nil
	}
	err := &gqlerror.Error{Message: `the request has no query: send {"query": "…"} (or ?query= on a GET)`}
	errcode.Set(err, badRequestCode)
	return err
}

// limitBody refuses bodies over MaxBodyBytes with 413, as every other
// request error is answered: at once when the request says its length, and
// after reading MaxBodyBytes of a body of unknown length (chunked).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tooLarge := r.ContentLength > MaxBodyBytes
		if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			tooLarge = len(b) > MaxBodyBytes
			var rest io.Reader = http.NoBody
			if err != nil {
				rest = errReader{err} // the transport answers it
			}
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), rest))
		}
		if tooLarge {
			writeRequestErrors(w, responseMediaType(http.Header{}, r), http.StatusRequestEntityTooLarge, []answeredError{{
				Message:    fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes),
				Extensions: map[string]any{"code": badRequestCode}}})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
