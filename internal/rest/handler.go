// Package rest keeps the seed's REST routes as thin adapters over the same
// inventory service that GraphQL uses: POST /product, GET /product/{id},
// POST /stock/in and POST /stock/out with the seed's {"id", "count"} bodies.
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/shopstack/inventory/internal/inventory"
)

// Handler serves the REST routes.
type Handler struct {
	svc *inventory.Service
	adm inventory.Admission
	log *slog.Logger
	mux *http.ServeMux
	// authorize makes each route check its caller's role.
	authorize bool
}

// Option configures a Handler.
type Option func(*Handler)

// RequireRoles makes each route check, as the GraphQL operation it runs,
// that the principal in the request's context may run it
// (inventory.Authorize).
func RequireRoles() Option { return func(h *Handler) { h.authorize = true } }

// NewHandler returns the REST routes over svc. Each route is admitted by
// adm as the GraphQL operation it runs (a refusal is 429 with
// Retry-After); a nil adm admits everything. A nil log discards.
func NewHandler(svc *inventory.Service, adm inventory.Admission, log *slog.Logger, opts ...Option) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if adm == nil {
		adm = inventory.AdmitAll{}
	}
	h := &Handler{svc: svc, adm: adm, log: log, mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	h.mux.HandleFunc("POST /product", h.admitted("createProduct", h.createProduct))
	h.mux.HandleFunc("GET /product", h.admitted("productBySku", h.productBySKU))
	h.mux.HandleFunc("GET /product/{id}", h.admitted("product", h.product))
	h.mux.HandleFunc("POST /stock/in", h.stock("stockIn", svc.StockIn))
	h.mux.HandleFunc("POST /stock/out", h.stock("stockOut", svc.StockOut))
	h.mux.HandleFunc("POST /stock/bulk", h.stockBulk)
	return h
}

// admitted runs next if the admission control admits op.
func (h *Handler) admitted(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		done, err := h.admit(r, op, nil)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		defer done(nil)
		next(w, r)
	}
}

// admit lets the request run operation op: its caller's role, then flow
// control. An admitted request calls done with its outcome.
func (h *Handler) admit(r *http.Request, op string, productIDs []int64) (done func(error), err error) {
	if h.authorize {
		if err := inventory.Authorize(r.Context(), op); err != nil {
			return nil, err
		}
	}
	return h.adm.Admit(r.Context(), op, productIDs)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// productRequest is the body of POST /product. The seed's body was
// {"id","name","price","stock","threshold"} with a client-chosen id, which
// becomes the SKU.
type productRequest struct {
	ID        *flexString `json:"id"`
	SKU       *string     `json:"sku"`
	Name      string      `json:"name"`
	Price     *flexString `json:"price"`
	Threshold int64       `json:"threshold"`
	Stock     int64       `json:"stock"`
	Location  *flexString `json:"location"`
}

func (h *Handler) createProduct(w http.ResponseWriter, r *http.Request) {
	var req productRequest
	if !h.decode(w, r, &req) {
		return
	}
	np := inventory.NewProduct{Name: req.Name, Threshold: req.Threshold, InitialStock: req.Stock, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	switch {
	case req.SKU != nil && req.ID != nil && string(*req.ID) != *req.SKU:
		h.fail(w, r, badInput("id", "give the SKU as sku or as id, not two different values"))
		return
	case req.SKU != nil:
		np.SKU = *req.SKU
	case req.ID != nil:
		np.SKU = string(*req.ID)
	default:
		h.fail(w, r, badInput("sku", "sku is required"))
		return
	}
	if req.Price == nil {
		h.fail(w, r, badInput("price", "price is required"))
		return
	}
	price, err := inventory.ParsePrice(string(*req.Price))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	np.Price = price
	if req.Location != nil {
		if np.InitialLocationID, err = parseID("location", string(*req.Location)); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	res, err := h.svc.CreateProduct(r.Context(), np)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/product/"+strconv.FormatInt(res.Product.ID, 10))
	writeJSON(w, status, toProduct(res.Product))
}

func (h *Handler) product(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, inventory.Errorf(inventory.CodeNotFound, "product %q not found", r.PathValue("id")))
		return
	}
	p, err := h.svc.Product(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toProduct(p))
}

func (h *Handler) productBySKU(w http.ResponseWriter, r *http.Request) {
	sku := r.URL.Query().Get("sku")
	if sku == "" {
		h.fail(w, r, badInput("sku", "give ?sku=… or use /product/{id}"))
		return
	}
	p, err := h.svc.ProductBySKU(r.Context(), sku)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toProduct(p))
}

// stockRequest is the seed's body of /stock/in and /stock/out; id and
// location may be JSON strings or numbers.
type stockRequest struct {
	ID        *flexString `json:"id"`
	Count     *int64      `json:"count"`
	Location  *flexString `json:"location"`
	Reason    string      `json:"reason"`
	Reference string      `json:"reference"`
}

func (h *Handler) stock(op string, apply func(context.Context, inventory.StockChange) (inventory.StockResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req stockRequest
		if !h.decode(w, r, &req) {
			return
		}
		if req.ID == nil {
			h.fail(w, r, badInput("id", "id (the product ID) is required"))
			return
		}
		if req.Count == nil {
			h.fail(w, r, badInput("count", "count is required"))
			return
		}
		in := inventory.StockChange{Quantity: *req.Count, Reason: req.Reason, Reference: req.Reference, IdempotencyKey: r.Header.Get("Idempotency-Key")}
		var err error
		if in.ProductID, err = parseID("id", string(*req.ID)); err != nil {
			h.fail(w, r, err)
			return
		}
		if req.Location != nil {
			if in.LocationID, err = parseID("location", string(*req.Location)); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		done, err := h.admit(r, op, []int64{in.ProductID})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		res, err := apply(r.Context(), in)
		done(err)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, stockResponse{
			Product: toProduct(res.Product), Level: toLevel(res.Level), Movement: toMovement(res.Movement), Replayed: res.Replayed,
		})
	}
}

func parseID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badInput(field, field+" must be a positive integer ID")
	}
	return id, nil
}

func badInput(field, msg string) *inventory.Error {
	return &inventory.Error{Code: inventory.CodeBadInput, Field: field, Message: msg}
}
