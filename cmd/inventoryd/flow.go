package main

import (
	"context"
	"log/slog"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/flow"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
)

// openFlow starts flow control with the configured rules file. Override
// SKUs are resolved through the store, as the service would.
func openFlow(ctx context.Context, cfg config.Config, store *gormstore.Store, log *slog.Logger) (*flow.Controller, error) {
	return flow.New(ctx, flow.Config{
		RulesFile:  cfg.FlowRules,
		Operations: graph.Operations(),
		ResolveSKU: func(ctx context.Context, sku string) (int64, error) {
			ps, err := store.ProductStockBySKU(ctx, inventory.NormalizeSKU(sku))
			return ps.Product.ID, err
		},
		Logger:        log,
		CheckInterval: cfg.FlowCheckInterval,
	})
}

// flowReporter answers the flowControl query from a flow.Controller.
type flowReporter struct{ c *flow.Controller }

func (f flowReporter) FlowControl(hotProducts int) *model.FlowControl {
	s := f.c.Status()
	out := &model.FlowControl{
		Source: s.Source, LoadedAt: s.LoadedAt,
		OperationRules: []*model.OperationFlowRule{}, BreakerRules: []*model.BreakerFlowRule{},
		Breakers: []*model.CircuitBreaker{}, Blocked: []*model.FlowBlockedCount{}, HotProducts: []*model.HotProduct{},
	}
	if s.LastError != "" {
		out.LastError, out.LastErrorAt = &s.LastError, &s.LastErrorAt
	}
	for _, o := range s.Rules.Operations {
		r := &model.OperationFlowRule{Operation: o.Resource, Behavior: behavior(o.Behaviour)}
		if o.QPS > 0 {
			r.QPS = &o.QPS
		}
		if o.Concurrency > 0 {
			r.Concurrency = ptr(int64(o.Concurrency))
		}
		if o.Behaviour == flow.Throttle {
			r.MaxQueueMs = ptr(int64(o.MaxQueueMs))
		}
		out.OperationRules = append(out.OperationRules, r)
	}
	if h := s.Rules.Hotspot; h != nil {
		r := &model.HotspotFlowRule{QPS: h.QPS, Burst: h.Burst, Behavior: behavior(h.Behaviour), Operations: h.Operations,
			Overrides: []*model.HotspotOverride{}, UnresolvedSkus: append([]string{}, s.UnresolvedSKUs...)}
		if h.Behaviour == flow.Throttle {
			r.MaxQueueMs = ptr(h.MaxQueueMs)
		}
		for _, o := range h.Overrides {
			ov := &model.HotspotOverride{QPS: o.QPS}
			if o.ProductID != 0 {
				ov.ProductID = ptr(model.GlobalID(model.ProductNode, int64(o.ProductID)))
			}
			if o.SKU != "" {
				ov.Sku = ptr(o.SKU)
			}
			r.Overrides = append(r.Overrides, ov)
		}
		out.HotspotRule = r
	}
	for _, b := range s.Rules.Breakers {
		r := &model.BreakerFlowRule{Resource: b.Resource, MinRequests: int64(b.MinRequests), WindowMs: int64(b.WindowMs), OpenMs: int64(b.OpenMs)}
		if b.ErrorRatio > 0 {
			r.ErrorRatio = ptr(b.ErrorRatio)
		}
		if b.SlowRatio > 0 {
			r.SlowRatio, r.SlowMs = ptr(b.SlowRatio), ptr(int64(b.SlowMs))
		}
		out.BreakerRules = append(out.BreakerRules, r)
	}
	for _, b := range s.Breakers {
		out.Breakers = append(out.Breakers, &model.CircuitBreaker{Resource: b.Resource, State: model.CircuitBreakerState(b.State), Since: b.Since})
	}
	for _, b := range s.Blocked {
		out.Blocked = append(out.Blocked, &model.FlowBlockedCount{Resource: b.Resource, Rule: b.Rule, Count: b.Count})
	}
	for _, p := range f.c.HotProducts(hotProducts) {
		out.HotProducts = append(out.HotProducts, &model.HotProduct{ProductID: model.GlobalID(model.ProductNode, p.ProductID), Admitted: p.Admitted, Blocked: p.Blocked})
	}
	return out
}

func behavior(b flow.Behaviour) model.FlowBehavior {
	if b == flow.Throttle {
		return model.FlowBehaviorThrottle
	}
	return model.FlowBehaviorReject
}

func ptr[T any](v T) *T { return &v }
