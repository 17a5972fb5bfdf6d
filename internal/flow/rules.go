package flow

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Rules is the rules file: YAML or JSON, the same fields either way. See
// deploy/flow-rules.yaml for an annotated example.
type Rules struct {
	// Operations limits GraphQL operations (root query and mutation fields;
	// the REST routes count as the mutation they run).
	Operations []OperationRule `json:"operations,omitempty"`
	// Hotspot limits each product on its own, across the stock mutations.
	Hotspot *HotspotRule `json:"hotspot,omitempty"`
	// Breakers stop calling the lock backend or the database while they
	// fail, so requests fail fast instead of piling up. Without the
	// section, the default breakers apply; "breakers: []" turns them off.
	Breakers []BreakerRule `json:"breakers,omitempty"`
}

// Behaviour is what a limit does with a request over it.
type Behaviour string

const (
	// Reject refuses it at once with RATE_LIMITED.
	Reject Behaviour = "reject"
	// Throttle queues it, spacing requests evenly at the limit, for up to
	// maxQueueMs; a request that would wait longer is refused.
	Throttle Behaviour = "throttle"
)

// OperationRule limits one operation on this replica.
type OperationRule struct {
	// Resource is the operation: a root field such as stockOut or products.
	Resource string `json:"resource"`
	// QPS admits at most this many requests per second (0: no limit).
	QPS float64 `json:"qps,omitempty"`
	// Concurrency admits at most this many requests at once (0: no limit).
	Concurrency uint32 `json:"concurrency,omitempty"`
	// Behaviour applies to the QPS limit: reject (default) or throttle.
	Behaviour Behaviour `json:"behavior,omitempty"`
	// MaxQueueMs is the longest a throttled request waits (default 500).
	MaxQueueMs uint32 `json:"maxQueueMs,omitempty"`
}

// HotspotRule limits each product's stock mutations per second on this
// replica, so one flash-sale SKU cannot take every worker.
type HotspotRule struct {
	// QPS is each product's limit per second.
	QPS int64 `json:"qps"`
	// Burst is how many requests above QPS a quiet product may take at once.
	Burst int64 `json:"burst,omitempty"`
	// Behaviour is reject (default) or throttle.
	Behaviour Behaviour `json:"behavior,omitempty"`
	// MaxQueueMs is the longest a throttled request waits (default 500).
	MaxQueueMs int64 `json:"maxQueueMs,omitempty"`
	// Operations are the operations the rule covers; by default every one
	// that moves stock of named products (DefaultHotspotOperations).
	Operations []string `json:"operations,omitempty"`
	// Overrides give named products a limit of their own.
	Overrides []Override `json:"overrides,omitempty"`
}

// DefaultHotspotOperations are the operations a hot-spot rule covers unless
// it lists its own.
var DefaultHotspotOperations = []string{"stockIn", "stockOut", "adjustStock", "moveStock", "reserveStock"}

// Override is one product's own hot-spot limit, the product named by ID or
// by SKU.
type Override struct {
	ProductID ID     `json:"productId,omitempty"`
	SKU       string `json:"sku,omitempty"`
	QPS       int64  `json:"qps"`
}

// ID is a product ID written as a number or a string of digits.
type ID int64

// UnmarshalJSON accepts 42 and "42".
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("productId %s is not a product ID", b)
	}
	*id = ID(n)
	return nil
}

// BreakerRule is a circuit breaker on the lock backend or the database.
// Over each window of windowMs with at least minRequests calls, it opens
// when the share of failed calls reaches errorRatio, or the share of calls
// slower than slowMs reaches slowRatio. Open, it refuses calls at once with
// a retryable UNAVAILABLE; it closes as soon as the backend answers its
// health check (checked every 200ms while open), or after openMs lets one
// call through and closes if that call succeeds.
type BreakerRule struct {
	// Resource is "lock" or "database".
	Resource    string  `json:"resource"`
	ErrorRatio  float64 `json:"errorRatio,omitempty"`
	SlowMs      uint64  `json:"slowMs,omitempty"`
	SlowRatio   float64 `json:"slowRatio,omitempty"`
	MinRequests uint64  `json:"minRequests,omitempty"`
	WindowMs    uint32  `json:"windowMs,omitempty"`
	OpenMs      uint32  `json:"openMs,omitempty"`
}

// Resources guarded by breakers.
const (
	ResourceLock     = "lock"
	ResourceDatabase = "database"
)

// resourceHotspot is the Sentinel resource of the hot-spot rule.
const resourceHotspot = "sku"

// Defaults are the rules without a rules file: no limits (capacity depends
// on the deployment), and a breaker on the lock backend and on the
// database that opens when half the calls of 10 seconds fail (at least 20
// calls), for 5 seconds.
func Defaults() Rules {
	b := func(res string) BreakerRule {
		return BreakerRule{Resource: res, ErrorRatio: 0.5, MinRequests: 20, WindowMs: 10000, OpenMs: 5000}
	}
	return Rules{Breakers: []BreakerRule{b(ResourceLock), b(ResourceDatabase)}}
}

// Parse reads a rules file (YAML or JSON) and checks it against the known
// operations. Unknown fields are errors: a misspelt limit must not pass
// silently.
func Parse(data []byte, operations []string) (Rules, error) {
	var r Rules
	if len(bytes.TrimSpace(data)) == 0 {
		return r, errors.New("the rules file is empty")
	}
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return Rules{}, fmt.Errorf("parse: %s", parseError(err))
	}
	r.setDefaults()
	if err := r.check(operations); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// parseError drops the YAML-to-JSON conversion's layers from err: what is
// left names the field or the line.
func parseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "json: "); i >= 0 {
		return msg[i+len("json: "):]
	}
	if i := strings.Index(msg, "yaml: "); i >= 0 {
		return msg[i:]
	}
	return msg
}

func (r *Rules) setDefaults() {
	if r.Breakers == nil {
		r.Breakers = Defaults().Breakers
	}
	for i := range r.Operations {
		o := &r.Operations[i]
		if o.Behaviour == "" {
			o.Behaviour = Reject
		}
		if o.Behaviour == Throttle && o.MaxQueueMs == 0 {
			o.MaxQueueMs = 500
		}
	}
	if h := r.Hotspot; h != nil {
		if h.Behaviour == "" {
			h.Behaviour = Reject
		}
		if h.Behaviour == Throttle && h.MaxQueueMs == 0 {
			h.MaxQueueMs = 500
		}
		if len(h.Operations) == 0 {
			h.Operations = slices.Clone(DefaultHotspotOperations)
		}
	}
	for i := range r.Breakers {
		b := &r.Breakers[i]
		if b.MinRequests == 0 {
			b.MinRequests = 20
		}
		if b.WindowMs == 0 {
			b.WindowMs = 10000
		}
		if b.OpenMs == 0 {
			b.OpenMs = 5000
		}
	}
}

// check reports every problem of r at once, each naming where it is.
func (r *Rules) check(operations []string) error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	known := func(op string) bool { return slices.Contains(operations, op) }
	seen := map[string]bool{}
	for i, o := range r.Operations {
		where := fmt.Sprintf("operations[%d]", i)
		switch {
		case o.Resource == "":
			bad(where, "resource is required")
		case !known(o.Resource):
			bad(where, "unknown operation %q (known: %s)", o.Resource, strings.Join(operations, ", "))
		case seen[o.Resource]:
			bad(where, "a second rule for %s; put both limits in one rule", o.Resource)
		}
		seen[o.Resource] = true
		if o.QPS < 0 || o.QPS == 0 && o.Concurrency == 0 {
			bad(where, "give qps > 0, concurrency > 0, or both")
		}
		checkBehaviour(bad, where, o.Behaviour)
		if o.Behaviour == Throttle && o.QPS == 0 {
			bad(where, "behavior throttle needs a qps")
		}
	}
	if h := r.Hotspot; h != nil {
		if h.QPS <= 0 {
			bad("hotspot", "qps must be positive")
		}
		if h.Burst < 0 || h.MaxQueueMs < 0 {
			bad("hotspot", "burst and maxQueueMs must not be negative")
		}
		checkBehaviour(bad, "hotspot", h.Behaviour)
		for _, op := range h.Operations {
			if !slices.Contains(DefaultHotspotOperations, op) {
				bad("hotspot", "operation %q does not move stock of named products (choose from %s)", op, strings.Join(DefaultHotspotOperations, ", "))
			}
		}
		for i, o := range h.Overrides {
			where := fmt.Sprintf("hotspot.overrides[%d]", i)
			if (o.ProductID == 0) == (o.SKU == "") {
				bad(where, "name the product by productId or by sku (one of them)")
			}
			if o.QPS < 0 {
				bad(where, "qps must not be negative (0 blocks the product)")
			}
		}
	}
	for i, b := range r.Breakers {
		where := fmt.Sprintf("breakers[%d]", i)
		if b.Resource != ResourceLock && b.Resource != ResourceDatabase {
			bad(where, "resource must be %q or %q, not %q", ResourceLock, ResourceDatabase, b.Resource)
		}
		if b.ErrorRatio == 0 && b.SlowRatio == 0 {
			bad(where, "give errorRatio, or slowMs with slowRatio, or both")
		}
		if b.ErrorRatio < 0 || b.ErrorRatio > 1 || b.SlowRatio < 0 || b.SlowRatio > 1 {
			bad(where, "ratios are between 0 and 1")
		}
		if (b.SlowRatio > 0) != (b.SlowMs > 0) {
			bad(where, "slowMs and slowRatio go together")
		}
	}
	return errors.Join(errs...)
}

func checkBehaviour(bad func(string, string, ...any), where string, b Behaviour) {
	if b != Reject && b != Throttle {
		bad(where, "behavior must be %q or %q, not %q", Reject, Throttle, b)
	}
}
