package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Persisted queries: a client sends an operation's SHA-256 in the
// persistedQuery extension ({"version": 1, "sha256Hash": …}) in place
// of its text, which lets a query go over GET in a short URL (and so
// through a CDN).
//
//   - Automatic (the default): the server learns operations as clients
//     send them with their hash, keeping the most recently used (a bounded
//     store); an unknown hash is PERSISTED_QUERY_NOT_FOUND, and the client
//     sends the text with the hash again.
//   - Trusted documents: the server runs only the operations of a
//     manifest it was started with, by hash or by text; anything else is
//     PERSISTED_QUERY_NOT_IN_LIST. Nothing is learned from clients.
type PersistedQueries struct {
	learned *lru.LRU[string] // automatic; nil when trusted
	trusted map[string]string
}

// Codes of persisted queries' refusals.
const (
	PersistedQueryNotFound  = "PERSISTED_QUERY_NOT_FOUND"
	PersistedQueryNotInList = "PERSISTED_QUERY_NOT_IN_LIST"
)

// AutomaticPersistedQueries learns up to entries operations.
func AutomaticPersistedQueries(entries int) *PersistedQueries {
	return &PersistedQueries{learned: lru.New[string](max(entries, 1))}
}

// LoadTrustedDocuments reads a manifest in Apollo's persisted query
// manifest format ({"format": "apollo-persisted-query-manifest",
// "version": 1, "operations": [{"id": sha256, "body": …}, …]}), checking
// each ID is its body's SHA-256.
func LoadTrustedDocuments(path string) (*PersistedQueries, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m struct {
		Format     string `json:"format"`
		Version    int    `json:"version"`
		Operations []struct {
			ID, Name, Body string
		} `json:"operations"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a persisted query manifest: %v", path, err)
	}
	if m.Format != "apollo-persisted-query-manifest" || m.Version != 1 {
		return nil, fmt.Errorf("%s: format %q version %d, want apollo-persisted-query-manifest version 1", path, m.Format, m.Version)
	}
	p := &PersistedQueries{trusted: map[string]string{}}
	for i, op := range m.Operations {
		if sum := queryHash(op.Body); sum != op.ID {
			return nil, fmt.Errorf("%s: operation %d (%s): id %q is not its body's SHA-256 (%s)", path, i, op.Name, op.ID, sum)
		}
		p.trusted[op.ID] = op.Body
	}
	return p, nil
}

// Trusted is how many operations a trusted-documents list holds (0 for
// automatic persisted queries).
func (p *PersistedQueries) Trusted() int { return len(p.trusted) }

func queryHash(q string) string {
	b := sha256.Sum256([]byte(q))
	return hex.EncodeToString(b[:])
}

var _ interface {
	graphql.OperationParameterMutator
	graphql.HandlerExtension
} = (*PersistedQueries)(nil)

func (*PersistedQueries) ExtensionName() string                   { return "PersistedQueries" }
func (*PersistedQueries) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters puts the operation's text in place of its
// hash, learns it (automatic), or refuses it.
func (p *PersistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	var ext struct {
		Version int    `json:"version"`
		Sha256  string `json:"sha256Hash"`
	}
	pq, sent := raw.Extensions["persistedQuery"]
	if sent {
		b, _ := json.Marshal(pq)
		if err := json.Unmarshal(b, &ext); err != nil || ext.Version != 1 || ext.Sha256 == "" {
			return requestError(badRequestCode, "extensions.persistedQuery", `persistedQuery must be {"version": 1, "sha256Hash": "<hex SHA-256 of the query>"}`)
		}
		if raw.Query != "" && queryHash(raw.Query) != ext.Sha256 {
			return requestError(badRequestCode, "extensions.persistedQuery.sha256Hash", "sha256Hash is not the query's SHA-256")
		}
	}
	if p.trusted != nil {
		hash := ext.Sha256
		if hash == "" {
			hash = queryHash(raw.Query)
		}
		body, ok := p.trusted[hash]
		if !ok {
			return requestError(PersistedQueryNotInList, "", "this server runs only its trusted operations, and this is not one of them")
		}
		raw.Query = body
		return nil
	}
	if !sent {
		return nil
	}
	if raw.Query == "" {
		q, ok := p.learned.Get(ctx, ext.Sha256)
		if !ok {
			return requestError(PersistedQueryNotFound, "", "PersistedQueryNotFound: send the query with its hash")
		}
		raw.Query = q
		return nil
	}
	p.learned.Add(ctx, ext.Sha256, raw.Query)
	return nil
}

// requestError is an error of the request itself, presented as it is.
func requestError(code, field, msg string) *gqlerror.Error {
	err := gqlerror.Errorf("%s", msg)
	errcode.Set(err, code)
	if field != "" {
		err.Extensions["field"] = field
	}
	return err
}
