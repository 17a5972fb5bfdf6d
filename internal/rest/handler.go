// Package rest keeps the seed's REST routes as thin adapters over the same
// inventory service that GraphQL uses: POST /product, GET /product/{id},
// POST /stock/in and POST /stock/out with the seed's {"id", "count"} bodies.
//
// A client written for the seed chooses its products' ids, so here a
// product's id is its SKU: the id a client creates a product with is the id
// it reads and moves stock with, and answers carry it as "id". The service's
// numeric ID travels as "productId" (docs/REST.md).
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
)

// Handler serves the REST routes.
type Handler struct {
	svc  *app.Service
	gate *inventory.Gate
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewHandler returns the REST routes over svc. Each route runs through
// gate as the GraphQL operation it runs: the role of the principal in the
// request's context (401 or 403), then flow control (429 with
// Retry-After). A nil gate authorizes as any Gate does and admits
// everything authorized; a nil log discards.
func NewHandler(svc *app.Service, gate *inventory.Gate, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, gate: gate, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /product", h.admitted("createProduct", h.createProduct))
	h.mux.HandleFunc("POST /bundle", h.admitted("createBundle", h.createBundle))
	h.mux.HandleFunc("GET /product", h.admitted("productBySku", h.productBySKU))
	h.mux.HandleFunc("GET /product/{id}", h.admitted("product", h.product))
	h.mux.HandleFunc("POST /stock/in", h.stock("stockIn", svc.StockIn))
	h.mux.HandleFunc("POST /stock/out", h.stock("stockOut", svc.StockOut))
	h.mux.HandleFunc("POST /stock/bulk", h.stockBulk)
	// Other methods on the routes, and other paths, answer in JSON too.
	for path, allow := range map[string]string{"/product": "GET, POST", "/product/{id}": "GET", "/bundle": "POST",
		"/stock/in": "POST", "/stock/out": "POST", "/stock/bulk": "POST"} {
		h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, errorBody{Code: string(inventory.CodeBadInput), Field: "method",
				Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + allow})
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, inventory.Errorf(inventory.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return h
}

// admitted runs next if the gate lets the request run op.
func (h *Handler) admitted(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		done, err := h.gate.Admit(r.Context(), op, nil)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// Flow control and the request counts learn the outcome next
		// answered with: the error it failed with, if any (see fail).
		var failed error
		next(w, r.WithContext(context.WithValue(r.Context(), failedKey{}, &failed)))
		done(failed)
	}
}

// failedKey holds, in a request admitted by admitted, where fail records
// the error the request was answered with.
type failedKey struct{}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r.WithContext(inventory.WithTransport(r.Context(), "rest")))
}

// productRequest is the body of POST /product. The seed's body was
// {"id","name","price","stock","threshold"} with a client-chosen id: the
// SKU. The other fields are optional, so a seed client's body means what
// it meant (no backorders, tracked, stock at the default location);
// Tracked is a pointer because an absent tracked means true.
type productRequest struct {
	ID             *flexString `json:"id"`
	SKU            *string     `json:"sku"`
	Name           string      `json:"name"`
	Price          *flexString `json:"price"`
	Threshold      int64       `json:"threshold"`
	Stock          int64       `json:"stock"`
	Location       *flexString `json:"location"`
	BackorderLimit int64       `json:"backorderLimit"`
	Tracked        *bool       `json:"tracked"`
}

func (h *Handler) createProduct(w http.ResponseWriter, r *http.Request) {
	var req productRequest
	if !h.decode(w, r, &req) {
		return
	}
	np := inventory.NewProduct{Name: req.Name, Threshold: req.Threshold, BackorderLimit: req.BackorderLimit, InitialStock: req.Stock,
		Untracked: req.Tracked != nil && !*req.Tracked, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	var err error
	if np.SKU, err = requestSKU(req.ID, req.SKU); err != nil {
		h.fail(w, r, err)
		return
	}
	if np.Price, err = requestPrice(req.Price); err != nil {
		h.fail(w, r, err)
		return
	}
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
	created(w, res)
}

// requestSKU is the SKU a body gives as sku or, as the seed did, as id.
func requestSKU(id *flexString, sku *string) (string, error) {
	switch {
	case sku != nil && id != nil && string(*id) != *sku:
		return "", badInput("id", "give the SKU as sku or as id, not two different values")
	case sku != nil:
		return *sku, nil
	case id != nil:
		return string(*id), nil
	}
	return "", badInput("sku", "sku is required")
}

// requestPrice is a body's price, a JSON number or string.
func requestPrice(price *flexString) (inventory.Price, error) {
	if price == nil {
		return 0, badInput("price", "price is required")
	}
	return inventory.ParsePrice(string(*price))
}

// created answers a product's creation: 201 with its Location, or 200
// when an Idempotency-Key replays it.
func created(w http.ResponseWriter, res inventory.ProductResult) {
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/product/"+url.PathEscape(res.Product.SKU))
	writeJSON(w, status, toProduct(res.Product))
}

// product is GET /product/{id}, the id being the SKU.
func (h *Handler) product(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.ProductBySKU(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toProduct(p))
}

func (h *Handler) productBySKU(w http.ResponseWriter, r *http.Request) {
	sku := r.URL.Query().Get("sku")
	if sku == "" {
		h.fail(w, r, badInput("sku", "give ?sku=… or use /product/{sku}"))
		return
	}
	p, err := h.svc.ProductBySKU(r.Context(), sku)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toProduct(p))
}

// stockRequest is the seed's body of /stock/in and /stock/out: the
// product (id or productId), and the count; location may be a JSON string
// or number.
type stockRequest struct {
	ID        *flexString `json:"id"`
	ProductID *flexString `json:"productId"`
	Count     *int64      `json:"count"`
	Location  *flexString `json:"location"`
	Reason    string      `json:"reason"`
	Reference string      `json:"reference"`
}

// productID resolves the product a body names by id (its SKU) or by
// productId (the service's ID, a JSON string or number). They are two
// fields of each body's own struct, not of an embedded one: encoding/json
// would put the embedded struct's Go name in a type error's field
// (productRef.productId).
func (h *Handler) productID(ctx context.Context, id, productID *flexString) (int64, error) {
	switch {
	case id != nil && productID != nil:
		return 0, badInput("id", "give the product as id (its SKU) or as productId, not both")
	case productID != nil:
		return parseID("productId", string(*productID))
	case id == nil:
		return 0, badInput("id", "id (the product's SKU) is required")
	}
	if *id == "" {
		return 0, badInput("id", "id (the product's SKU) is required")
	}
	p, err := h.svc.ProductBySKU(ctx, string(*id))
	if err != nil {
		return 0, err
	}
	return p.ID, nil
}

func (h *Handler) stock(op string, apply func(context.Context, inventory.StockChange) (inventory.StockResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req stockRequest
		if !h.decode(w, r, &req) {
			return
		}
		// The role first: a caller who may not move stock learns nothing
		// of which products exist. Flow control, keyed by the product,
		// admits the pass once the product is known.
		pass, err := h.gate.Authorize(r.Context(), op)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if req.Count == nil {
			h.fail(w, r, badInput("count", "count is required"))
			return
		}
		in := inventory.StockChange{Quantity: *req.Count, Reason: req.Reason, Reference: req.Reference, IdempotencyKey: r.Header.Get("Idempotency-Key")}
		if in.ProductID, err = h.productID(r.Context(), req.ID, req.ProductID); err != nil {
			h.fail(w, r, err)
			return
		}
		if req.Location != nil {
			if in.LocationID, err = parseID("location", string(*req.Location)); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		done, err := pass.Admit(r.Context(), []int64{in.ProductID})
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
			product: toProduct(res.Product), Level: toLevel(res.Level), Movement: toMovement(res.Movement), Replayed: res.Replayed,
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
