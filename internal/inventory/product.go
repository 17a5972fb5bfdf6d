package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on input. They are part of the API contract and documented in the
// schema.
const (
	MaxQuantity     = 1_000_000_000 // largest quantity in one stock change
	MaxStock        = 2_147_483_647 // largest stock of one product (GraphQL Int)
	MaxNameLength   = 200
	MaxTextLength   = 500 // reason
	MaxRefLength    = 200 // reference
	MaxKeyLength    = 128 // idempotency key
	MaxPageSize     = 100
	DefaultPageSize = 20
)

var skuPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9._-]{0,63}$`)

// Product is an item that is stocked. Stock and Reserved are the sums over
// all locations; they are maintained in the same transaction as the levels.
type Product struct {
	ID        int64
	SKU       string
	Name      string
	Price     Price
	Threshold int64
	Stock     int64
	Reserved  int64
	// States are the sums of its levels' states.
	States
	// BackorderLimit is how far below zero each level's available may go:
	// stock-outs and reservations may sell or hold up to that many units
	// the level does not have. Backordered is the sum over the levels of
	// the units sold or held beyond what was there (Level.Backordered).
	BackorderLimit int64
	Backordered    int64
	// Untracked products' stock nobody counts (digital goods, services,
	// made to order): their changes are recorded, never refused for want
	// of stock, and raise no low-stock alerts.
	Untracked bool
	// Bundle products have no stock of their own: Components are what one
	// unit is made of (see bundle.go). A bundle's stock fields, as read,
	// are made from its components' (BundleStock).
	Bundle     bool
	Components []BundleComponent
	// LowStockAlerted is the edge-trigger state of the low-stock alert: set
	// when an alert is raised, cleared (re-armed) when available stock is back
	// at or above the threshold.
	LowStockAlerted bool
	// Version counts edits of the product's own attributes; stock levels
	// carry their own versions.
	Version int64
	// LastSeq is the ledger sequence of the product's latest movement (0:
	// none yet): its totals and levels are as of it.
	LastSeq int64
	// Revision is the catalog revision of the product's creation or latest
	// edit: product mutations are numbered in commit order.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Available is the stock that can still be sold: on hand minus reserved
// and held, over all locations.
func (p Product) Available() int64 { return available(p.Stock, p.Reserved, p.States) }

// Tracked reports whether the product's stock is counted.
func (p Product) Tracked() bool { return !p.Untracked }

// LowStock reports whether available stock is below the threshold; an
// untracked product's never is.
func (p Product) LowStock() bool { return !p.Untracked && p.Available() < p.Threshold }

// NewProduct is the input of Service.CreateProduct.
type NewProduct struct {
	SKU       string
	Name      string
	Price     Price
	Threshold int64
	// BackorderLimit and Untracked are the product's; see Product.
	BackorderLimit int64
	Untracked      bool
	// InitialStock, if positive, is received at InitialLocationID (the default
	// location if zero) in the same transaction, with an IN ledger row.
	InitialStock      int64
	InitialLocationID int64
	IdempotencyKey    string
}

// ProductUpdate is the input of Service.UpdateProduct. Nil fields are left
// unchanged.
type ProductUpdate struct {
	ID        int64
	SKU       *string
	Name      *string
	Price     *Price
	Threshold *int64
	// BackorderLimit may not go below the units backordered now.
	BackorderLimit *int64
	// Tracked switches tracking on or off. On, the product may have no
	// level further below zero than its backorder limit: count it first
	// (AdjustStock).
	Tracked *bool
	// ExpectedVersion, if set, makes the update a compare-and-set.
	ExpectedVersion *int64
	IdempotencyKey  string
}

// ProductFilter selects products in Service.Products.
type ProductFilter struct {
	// Text matches a substring of the SKU or the name, case-insensitively.
	Text string
	// LowStock, if set, keeps only products whose LowStock equals it.
	LowStock *bool
}

// ProductStock is a product with all its stock levels, read together: the
// levels add up to the product's totals.
type ProductStock struct {
	Product Product
	// Levels are ordered by location ID.
	Levels []Level
}

// ProductPage is a page of products ordered by ID.
type ProductPage struct {
	Products []ProductStock
	HasNext  bool
}

// IDPage is a page of product IDs in ascending order.
type IDPage struct {
	IDs     []int64
	HasNext bool
}

// NormalizeSKU upper-cases and trims a SKU; SKUs compare case-insensitively.
func NormalizeSKU(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ValidateSKU checks a (normalized) SKU: 1 to 64 of A-Z 0-9 . _ -, starting
// with a letter or digit.
func ValidateSKU(s string) error {
	if !skuPattern.MatchString(s) {
		return Invalid("sku", "sku must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

func validateName(field, s string) error {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > MaxNameLength {
		return Invalid(field, "%s must be 1 to %d characters", field, MaxNameLength)
	}
	return ValidateText(field, s, MaxNameLength)
}

func ValidateText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "%s must be valid UTF-8", field)
	}
	if utf8.RuneCountInString(s) > max {
		return Invalid(field, "%s must be at most %d characters", field, max)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return Invalid(field, "%s must not contain control characters", field)
	}
	return nil
}

func validateThreshold(t int64) error {
	if t < 0 || t > MaxStock {
		return Invalid("threshold", "threshold must be between 0 and %d", MaxStock)
	}
	return nil
}

func validateBackorderLimit(l int64) error {
	if l < 0 || l > MaxStock {
		return Invalid("backorderLimit", "backorderLimit must be between 0 and %d", MaxStock)
	}
	return nil
}

func validatePrice(p Price) error {
	if p < 0 || p > MaxPrice {
		return Invalid("price", "price must be between 0 and %s", MaxPrice)
	}
	return nil
}

func ValidateIdempotencyKey(k string) error {
	if len(k) > MaxKeyLength {
		return Invalid("idempotencyKey", "idempotencyKey must be at most %d bytes", MaxKeyLength)
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return Invalid("idempotencyKey", "idempotencyKey must be printable ASCII without spaces")
		}
	}
	return nil
}

// Normalize trims and upper-cases np's SKU, checks every field, and
// returns the first BAD_USER_INPUT found.
func (np *NewProduct) Normalize() error {
	np.SKU = NormalizeSKU(np.SKU)
	np.Name = strings.TrimSpace(np.Name)
	if err := ValidateSKU(np.SKU); err != nil {
		return err
	}
	if err := validateName("name", np.Name); err != nil {
		return err
	}
	if err := validatePrice(np.Price); err != nil {
		return err
	}
	if err := validateThreshold(np.Threshold); err != nil {
		return err
	}
	if err := validateBackorderLimit(np.BackorderLimit); err != nil {
		return err
	}
	if np.InitialStock < 0 || np.InitialStock > MaxQuantity {
		return Invalid("initialStock", "initialStock must be between 0 and %d", MaxQuantity)
	}
	if np.InitialLocationID < 0 {
		return Invalid("locationId", "locationId must be a positive id")
	}
	return ValidateIdempotencyKey(np.IdempotencyKey)
}

// Normalize normalizes and checks the fields u sets.
func (u *ProductUpdate) Normalize() error {
	if u.ID <= 0 {
		return Invalid("id", "id must be a positive id")
	}
	if u.SKU != nil {
		s := NormalizeSKU(*u.SKU)
		u.SKU = &s
		if err := ValidateSKU(s); err != nil {
			return err
		}
	}
	if u.Name != nil {
		s := strings.TrimSpace(*u.Name)
		u.Name = &s
		if err := validateName("name", s); err != nil {
			return err
		}
	}
	if u.Price != nil {
		if err := validatePrice(*u.Price); err != nil {
			return err
		}
	}
	if u.Threshold != nil {
		if err := validateThreshold(*u.Threshold); err != nil {
			return err
		}
	}
	if u.BackorderLimit != nil {
		if err := validateBackorderLimit(*u.BackorderLimit); err != nil {
			return err
		}
	}
	return ValidateIdempotencyKey(u.IdempotencyKey)
}

// ApplyTo changes p as u says and reports whether anything changed. A
// backorder limit below the units p has backordered is a CONFLICT: the
// backorders are filled first.
func (u ProductUpdate) ApplyTo(p *Product) (bool, error) {
	changed := false
	if p.Bundle && (u.BackorderLimit != nil || u.Tracked != nil) {
		field := "backorderLimit"
		if u.BackorderLimit == nil {
			field = "tracked"
		}
		return false, Invalid(field, "product %s is a bundle: its components' backorder limits and tracking apply", p.SKU)
	}
	if l := u.BackorderLimit; l != nil && *l != p.BackorderLimit {
		if *l < p.Backordered {
			return false, &Error{Code: CodeConflict, Field: "backorderLimit",
				Message: fmt.Sprintf("%d units of the product are backordered; fill them before lowering its backorder limit to %d", p.Backordered, *l)}
		}
		p.BackorderLimit, changed = *l, true
	}
	if tr := u.Tracked; tr != nil && *tr == p.Untracked {
		if *tr && p.Backordered > p.BackorderLimit {
			return false, &Error{Code: CodeConflict, Field: "tracked",
				Message: fmt.Sprintf("the product's levels are %d units below zero, beyond its backorder limit of %d; count them (adjustStock) before tracking it", p.Backordered, p.BackorderLimit)}
		}
		p.Untracked, changed = !*tr, true
	}
	if u.SKU != nil && *u.SKU != p.SKU {
		p.SKU, changed = *u.SKU, true
	}
	if u.Name != nil && *u.Name != p.Name {
		p.Name, changed = *u.Name, true
	}
	if u.Price != nil && *u.Price != p.Price {
		p.Price, changed = *u.Price, true
	}
	if u.Threshold != nil && *u.Threshold != p.Threshold {
		p.Threshold, changed = *u.Threshold, true
	}
	return changed, nil
}

// Location is a place where stock is kept. Locations are never edited or
// deleted, so they may be cached by ID.
type Location struct {
	ID        int64
	Code      string
	Name      string
	CreatedAt time.Time
}

// DefaultLocationID is the built-in location used when a request names none.
const DefaultLocationID int64 = 1

// IsDefault reports whether l is the built-in default location.
func (l Location) IsDefault() bool { return l.ID == DefaultLocationID }

// NewLocation is the input of Service.CreateLocation.
type NewLocation struct {
	Code string
	Name string
}

// Normalize trims and upper-cases nl's code and checks its fields.
func (nl *NewLocation) Normalize() error {
	nl.Code = NormalizeSKU(nl.Code)
	nl.Name = strings.TrimSpace(nl.Name)
	if !skuPattern.MatchString(nl.Code) {
		return Invalid("code", "code must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return validateName("name", nl.Name)
}

// ProductResult is what product mutations return.
type ProductResult struct {
	Product Product
	// Movement is the initial-stock movement of a created product, if any.
	Movement *Movement
	Replayed bool
}
