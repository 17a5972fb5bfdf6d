package graph

import (
	"embed"
	"html/template"
	"net/http"
	"strings"
)

// The GraphiQL page is served from the binary, assets included, so it
// works without internet access (gqlgen's page loads them from a CDN).
// The assets are graphiql@4.1.2, react@18.2.0 and react-dom@18.2.0,
// unmodified; scripts/fetch-graphiql.sh fetches them and checks them
// against the hashes below, which the page also gives the browser as
// subresource integrity.
//
//go:embed graphiql/*.js graphiql/*.css
var graphiqlAssets embed.FS

// graphiqlPage is the page; the assets are under its /graphiql/.
var graphiqlPage = template.Must(template.New("graphiql").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Inventory GraphQL</title>
<style>body { margin: 0; } #graphiql { height: 100vh; }
.loading { height: 100%; display: flex; align-items: center; justify-content: center; font: 2rem sans-serif; }</style>
<script src="/graphiql/react.production.min.js" integrity="sha256-S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY="></script>
<script src="/graphiql/react-dom.production.min.js" integrity="sha256-IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc="></script>
<link rel="stylesheet" href="/graphiql/graphiql.min.css" integrity="sha256-MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=">
</head>
<body>
<div id="graphiql"><div class="loading">Loading GraphiQL…</div></div>
<script src="/graphiql/graphiql.min.js" integrity="sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs="></script>
<script>
const url = location.protocol + '//' + location.host + {{.Endpoint}};
const subscriptionUrl = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + {{.Endpoint}};
ReactDOM.render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url, subscriptionUrl }),
    defaultQuery: {{.Query}},
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    inputValueDeprecation: true,
  }),
  document.getElementById('graphiql'),
);
</script>
</body>
</html>
`))

// graphiqlQuery is the example the page opens with.
const graphiqlQuery = `# The inventory API. Run an operation with the ▶ button; the schema's
# documentation is under the book icon. With tokens configured, add a
# header below: {"Authorization": "Bearer <token>"}.

query Catalogue {
  products(first: 10) {
    totalCount
    edges { node { id sku name price stock available lowStock } }
  }
}

mutation AddMug {
  createProduct(input: {sku: "MUG-1", name: "Mug", price: "8.00", initialStock: 20, threshold: 5}) {
    product { id sku available }
  }
}

subscription Changes {
  stockChanged { sequence movement { type delta } product { sku available } }
}
`

// NewGraphiQL returns the GraphiQL page for the endpoint at path, and its
// assets under /graphiql/: mount it at "GET /{$}" and "GET /graphiql/".
func NewGraphiQL(path string) http.Handler {
	assets := http.FileServerFS(graphiqlAssets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/graphiql/") {
			// The names carry no version, but a binary's assets never
			// change: a day's caching spares reloads their megabyte.
			w.Header().Set("Cache-Control", "public, max-age=86400")
			assets.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = graphiqlPage.Execute(w, struct{ Endpoint, Query string }{path, graphiqlQuery})
	})
}
