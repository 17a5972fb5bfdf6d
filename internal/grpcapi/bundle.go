package grpcapi

import (
	"context"

	"connectrpc.com/connect"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

// Bundles: CreateBundle runs as the GraphQL field createBundle; a bundle's
// stock changes go through the stock methods, which the service routes to
// its components.

func (s *server) CreateBundle(ctx context.Context, req *connect.Request[v1.CreateBundleRequest]) (*connect.Response[v1.CreateBundleResponse], error) {
	m := req.Msg
	out := &v1.CreateBundleResponse{}
	err := s.run(ctx, "createBundle", nil, func() error {
		price, err := inventory.ParsePrice(m.GetPrice())
		if err != nil {
			return err
		}
		in := inventory.NewBundle{SKU: m.GetSku(), Name: m.GetName(), Price: price, Threshold: m.GetThreshold(),
			IdempotencyKey: m.GetIdempotencyKey()}
		for _, c := range m.GetComponents() {
			in.Components = append(in.Components, inventory.BundleComponent{ProductID: c.GetProductId(), Quantity: c.GetQuantity()})
		}
		r, err := s.svc.CreateBundle(ctx, in)
		out.Product, out.Replayed = toProduct(r.Product, nil), r.Replayed
		return err
	})
	return reply(out, err)
}

// watchedBundles returns the bundles among ids that productID is a
// component of, as they are now; none when ids names none.
func (s *server) watchedBundles(ctx context.Context, ids []int64, productID int64) ([]*v1.Product, error) {
	bundles := s.svc.BundlesOf(ids, productID)
	if len(bundles) == 0 {
		return nil, nil
	}
	pss, err := s.svc.ProductStocks(ctx, bundles)
	if err != nil {
		return nil, err
	}
	out := make([]*v1.Product, len(pss))
	for i, ps := range pss {
		out[i] = toProduct(ps.Product, ps.Levels)
	}
	return out, nil
}
