package inventory

import (
	"strconv"
	"strings"
)

// Price is an amount of money in millionths of the currency unit. Money is
// never a float: prices travel as decimal strings ("12.50") and are stored as
// integers.
type Price int64

const (
	priceScale    = 6
	priceUnit     = 1_000_000
	maxPriceUnits = 1_000_000_000_000 // 10^12 currency units
)

// MaxPrice is the largest price accepted.
const MaxPrice Price = maxPriceUnits*priceUnit - 1

// ParsePrice parses a non-negative decimal string with at most six fraction
// digits, such as "12", "12.5" or "0.000001". Exponents, signs, spaces and
// thousands separators are rejected.
func ParsePrice(s string) (Price, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, Invalid("price", "price must be a decimal number such as 12.50, got %q", clip(s, 40))
	}
	if len(frac) > priceScale {
		return 0, Invalid("price", "price has more than %d decimal places", priceScale)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 12 {
		return 0, Invalid("price", "price must be less than 1000000000000")
	}
	var units int64
	if whole != "" {
		units, _ = strconv.ParseInt(whole, 10, 64) // at most 12 digits: cannot fail
	}
	frac += strings.Repeat("0", priceScale-len(frac))
	micros, _ := strconv.ParseInt(frac, 10, 64)
	return Price(units*priceUnit + micros), nil
}

// String formats p with at least two decimal places: "12.50", "0.000001".
func (p Price) String() string {
	units, micros := int64(p)/priceUnit, int64(p)%priceUnit
	frac := strconv.FormatInt(micros+priceUnit, 10)[1:] // zero-padded to six digits
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return strconv.FormatInt(units, 10) + "." + frac
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for inclusion in an error message.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
