package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/rest"
)

// newHandler routes every endpoint of the service.
func newHandler(svc *inventory.Service, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	gql := graph.NewHandler(svc, log)
	mux.Handle("/query", gql)
	mux.Handle("GET /{$}", graph.NewGraphiQL("/query"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := svc.Ready(ctx); err != nil {
			log.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": map[string]string{"database": "unreachable"}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": map[string]string{"database": "ok"}})
	})
	restAPI := rest.NewHandler(svc, log)
	mux.Handle("/product", restAPI)
	mux.Handle("/product/", restAPI)
	mux.Handle("/stock/", restAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "NOT_FOUND", "message": "no such endpoint; GraphQL is at /query"}})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
