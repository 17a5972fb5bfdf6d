package rest

import (
	"encoding/json"
	"net/http"

	"github.com/shopstack/inventory/internal/inventory"
)

// bundleRequest is the body of POST /bundle: a product's (the SKU as sku
// or id, name, price, threshold) and its components, each a product as a
// stock change names it (id or productId) and how many units of it one
// bundle takes. A bundle has no stock of its own, so no stock, location,
// backorderLimit or tracked.
type bundleRequest struct {
	ID         *flexString     `json:"id"`
	SKU        *string         `json:"sku"`
	Name       string          `json:"name"`
	Price      *flexString     `json:"price"`
	Threshold  int64           `json:"threshold"`
	Components json.RawMessage `json:"components"` // []componentRequest, read by items
}

type componentRequest struct {
	ID        *flexString `json:"id"`
	ProductID *flexString `json:"productId"`
	Quantity  int64       `json:"quantity"`
}

// createBundle is POST /bundle: the service's CreateBundle, answered as
// POST /product answers.
func (h *Handler) createBundle(w http.ResponseWriter, r *http.Request) {
	var req bundleRequest
	if !h.decode(w, r, &req) {
		return
	}
	comps, err := items[componentRequest]("components", req.Components)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	nb := inventory.NewBundle{Name: req.Name, Threshold: req.Threshold, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if nb.SKU, err = requestSKU(req.ID, req.SKU); err != nil {
		h.fail(w, r, err)
		return
	}
	if nb.Price, err = requestPrice(req.Price); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(comps) > inventory.MaxBundleComponents {
		// The service refuses it too; here before a lookup per SKU.
		h.fail(w, r, inventory.Invalid("components", "a bundle has 1 to %d components", inventory.MaxBundleComponents))
		return
	}
	for i, c := range comps {
		id, err := h.productID(r.Context(), c.ID, c.ProductID)
		if err != nil {
			h.fail(w, r, inItem("components", i, err))
			return
		}
		nb.Components = append(nb.Components, inventory.BundleComponent{ProductID: id, Quantity: c.Quantity})
	}
	res, err := h.svc.CreateBundle(r.Context(), nb)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	created(w, res)
}
