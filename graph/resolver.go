// Package graph is the GraphQL transport: gqlgen's generated executor, thin
// resolvers that decode, call the inventory service and map, and the one
// table that turns domain errors into extensions.code.
package graph

//go:generate go tool gqlgen generate

import (
	"log/slog"
	"time"

	"github.com/shopstack/inventory/internal/app"
)

// Resolver is the root of the resolvers and their only dependency holder.
type Resolver struct {
	Service *app.Service
	Log     *slog.Logger
	Flow    FlowReporter
	// loaderWait is how long nested fields' loaders collect keys.
	loaderWait time.Duration
}
