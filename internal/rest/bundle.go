package rest

import (
	"net/http"

	"github.com/shopstack/inventory/internal/inventory"
)

// bundleRequest is the body of POST /bundle: a product's (the SKU as sku
// or id, name, price, threshold) and its components, each a product as a
// stock change names it (id or productId) and how many units of it one
// bundle takes. A bundle has no stock of its own, so no stock, location,
// backorderLimit or tracked.
type bundleRequest struct {
	ID         *flexString        `json:"id"`
	SKU        *string            `json:"sku"`
	Name       string             `json:"name"`
	Price      *flexString        `json:"price"`
	Threshold  int64              `json:"threshold"`
	Components []componentRequest `json:"components"`
}

type componentRequest struct {
	productRef
	Quantity int64 `json:"quantity"`
}

// createBundle is POST /bundle: the service's CreateBundle, answered as
// POST /product answers.
func (h *Handler) createBundle(w http.ResponseWriter, r *http.Request) {
	var req bundleRequest
	if !h.decode(w, r, &req) {
		return
	}
	nb := inventory.NewBundle{Name: req.Name, Threshold: req.Threshold, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	var err error
	if nb.SKU, err = requestSKU(req.ID, req.SKU); err != nil {
		h.fail(w, r, err)
		return
	}
	if nb.Price, err = requestPrice(req.Price); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(req.Components) > inventory.MaxBundleComponents {
		// The service refuses it too; here before a lookup per SKU.
		h.fail(w, r, inventory.Invalid("components", "a bundle has 1 to %d components", inventory.MaxBundleComponents))
		return
	}
	for _, c := range req.Components {
		id, err := h.productID(r.Context(), c.productRef)
		if err != nil {
			h.fail(w, r, err)
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
