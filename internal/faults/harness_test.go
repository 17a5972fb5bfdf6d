//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// bin is the inventoryd binary the replicas run, built once.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faults")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "inventoryd")
	build := exec.Command("go", "build", "-o", bin, "github.com/shopstack/inventory/cmd/inventoryd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build inventoryd:", err)
		os.Exit(2)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one inventoryd child process.
type replica struct {
	t   *testing.T
	env map[string]string
	cmd *exec.Cmd
	mu  sync.Mutex // guards url and log
	url string
	log bytes.Buffer
	// exited is closed when the process ends.
	exited chan struct{}
}

// startReplica runs inventoryd on a free loopback port with env.
func startReplica(t *testing.T, env map[string]string) *replica {
	t.Helper()
	r := &replica{t: t, env: env}
	r.start()
	t.Cleanup(func() { r.kill() })
	return r
}

func (r *replica) start() {
	r.t.Helper()
	addr := "127.0.0.1:0"
	if u := r.URL(); u != "" {
		addr = strings.TrimPrefix(u, "http://") // a restart keeps its address
	}
	cmd := exec.Command(bin, "-addr", addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.t.TempDir(), "TMPDIR=" + os.TempDir()}
	for k, v := range r.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.log.Write(sc.Bytes())
			r.log.WriteByte('\n')
			r.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				listening <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(r.exited)
	}()
	select {
	case a := <-listening:
		r.mu.Lock()
		r.url = "http://" + a
		r.mu.Unlock()
	case <-r.exited:
		r.t.Fatalf("replica exited before listening:\n%s", r.logs())
	case <-time.After(60 * time.Second):
		r.t.Fatalf("replica did not listen within 60s:\n%s", r.logs())
	}
}

// URL is where the replica listens.
func (r *replica) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url
}

func (r *replica) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func (r *replica) signal(sig syscall.Signal) {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

// kill ends the process with SIGKILL: no shutdown at all.
func (r *replica) kill() {
	r.signal(syscall.SIGKILL)
	if r.exited != nil {
		<-r.exited
	}
}

// pause stops the process (SIGSTOP) for d: its leases lapse while it
// holds them, and it wakes believing it still does.
func (r *replica) pause(d time.Duration) {
	r.signal(syscall.SIGSTOP)
	time.Sleep(d)
	r.signal(syscall.SIGCONT)
}

// client is one GraphQL client with retries, spreading its requests over
// the replicas.
type client struct {
	t        *testing.T
	id       int
	replicas []*replica
	http     *http.Client
	// retryFor bounds how long one request is retried before its outcome
	// is recorded as unknown.
	retryFor time.Duration
	next     atomic.Int64
	// retries counts the attempts that failed and were retried.
	retries atomic.Int64
}

// errUnknown is a request whose outcome the client never learned.
var errUnknown = errors.New("outcome unknown")

type gqlError struct {
	Message    string
	Extensions map[string]any
}

// do posts one GraphQL request, trying replicas in turn while the
// answer is a transport failure or a retryable error. It returns the data,
// or the last error's code (errUnknown if no answer ever came).
func (c *client) do(query string, vars map[string]any, out any) (code string, err error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	deadline := time.Now().Add(c.retryFor)
	backoff := 5 * time.Millisecond
	for {
		r := c.replicas[int(c.next.Add(1))%len(c.replicas)]
		resp, err := c.http.Post(r.URL()+"/query", "application/json", bytes.NewReader(body))
		if err == nil {
			var res struct {
				Data   json.RawMessage
				Errors []gqlError
			}
			decodeErr := json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if decodeErr == nil && len(res.Errors) == 0 {
				return "OK", json.Unmarshal(res.Data, out)
			}
			if decodeErr == nil && res.Errors[0].Extensions["retryable"] != true {
				return fmt.Sprint(res.Errors[0].Extensions["code"]), nil
			}
			// A retryable answer changed nothing: try again, with the same
			// key, as a client should.
		}
		if time.Now().After(deadline) {
			// An earlier attempt may have gone through unanswered.
			return "", errUnknown
		}
		c.retries.Add(1)
		time.Sleep(backoff + rand.N(backoff))
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// stock runs one stock change with an idempotency key, retried, records
// it in h, and returns its outcome.
func (c *client) stock(h *History, product int64, in Input, key string) string {
	ret := h.Call(c.id, product, in, key)
	field := map[string]string{OpIn: "stockIn", OpOut: "stockOut"}[in.Kind]
	var data map[string]struct {
		Movement struct{ QuantityAfter int64 }
	}
	code, err := c.do(`mutation($id: ID!, $q: Int!, $key: String) { `+field+`(input: {productId: $id, quantity: $q, idempotencyKey: $key}) { movement { quantityAfter } } }`,
		map[string]any{"id": product, "q": in.Qty, "key": key}, &data)
	out := Output{Kind: Unknown}
	switch {
	case err != nil:
	case code == "OK":
		out = Output{Kind: OK, After: data[field].Movement.QuantityAfter}
	case code == "INSUFFICIENT_STOCK":
		out = Output{Kind: Insufficient}
	default:
		c.t.Errorf("%s %d of product %d: unexpected %s", in.Kind, in.Qty, product, code)
	}
	ret(out)
	return out.Kind
}

// workload runs clients against the products until ctx is done: each
// sends stock-outs (mostly) and stock-ins with fresh idempotency keys. It
// returns the keys of the changes acknowledged.
func workload(ctx context.Context, h *History, clients []*client, products []int64) (acked *sync.Map) {
	acked = &sync.Map{}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c.id), 42))
			for n := 0; ctx.Err() == nil; n++ {
				product := products[r.IntN(len(products))]
				in := Input{Kind: OpOut, Qty: 1 + r.Int64N(3)}
				if r.IntN(10) < 3 {
					in = Input{Kind: OpIn, Qty: 1 + r.Int64N(2)}
				}
				key := fmt.Sprintf("c%d-%d", c.id, n)
				if c.stock(h, product, in, key) == OK {
					acked.Store(key, true)
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// holds counts a reservation workload's outcomes.
type holds struct {
	mu       sync.Mutex
	outcomes map[string]int // "reserve OK", "commit INSUFFICIENT_STOCK", …
}

func (h *holds) count(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcomes[what]++
}

// reserveLoop holds units for ttl, then commits or releases the
// reservation, recording both in hist for each product, until ctx is done.
// Two holds in three are 1–2 units of one product; the third is a cart of
// one unit of each of two products, held and closed all or nothing.
func (c *client) reserveLoop(ctx context.Context, hist *History, products []int64, ttl time.Duration, h *holds) {
	r := rand.New(rand.NewPCG(uint64(c.id), 7))
	for n := 0; ctx.Err() == nil; n++ {
		type line struct{ product, qty int64 }
		lines := []line{{products[r.IntN(len(products))], 1 + r.Int64N(2)}}
		kind, what := OpReserve, "reserve"
		if r.IntN(3) == 0 && len(products) > 1 {
			i := r.IntN(len(products))
			lines = []line{{products[i], 1}, {products[(i+1)%len(products)], 1}}
			kind, what = OpCartItem, "cart"
		}
		key := fmt.Sprintf("r%d-%d", c.id, n)
		items := make([]map[string]any, len(lines))
		rets := make([]func(Output), len(lines))
		for i, l := range lines {
			items[i] = map[string]any{"productId": l.product, "quantity": l.qty}
			rets[i] = hist.Call(c.id, l.product, Input{Kind: kind, Qty: l.qty}, ReservationKey(key))
		}
		record := func(out Output) {
			for _, ret := range rets {
				ret(out)
			}
		}
		var res map[string]struct{ Reservation struct{ ID string } }
		code, err := c.do(`mutation($items: [ReservationItemInput!]!, $ttl: Int!, $key: String) { reserveStock(input: {items: $items, ttlSeconds: $ttl, idempotencyKey: $key}) { reservation { id } } }`,
			map[string]any{"items": items, "ttl": int(ttl.Seconds()), "key": key}, &res)
		switch {
		case err != nil:
			record(Output{Kind: Unknown})
			h.count(what + " unknown")
			continue
		case code == "OK":
			record(Output{Kind: OK})
		case code == "INSUFFICIENT_STOCK":
			record(Output{Kind: Insufficient})
		}
		h.count(what + " " + code)
		if code != "OK" {
			continue
		}
		id := res["reserveStock"].Reservation.ID
		time.Sleep(time.Duration(r.IntN(100)) * time.Millisecond)
		c.next.Add(int64(r.IntN(2))) // closed on the replica that made it, or on the other
		op, close := "commitReservation", OpCommit
		if r.IntN(2) == 0 {
			op, close = "releaseReservation", OpRelease
		}
		for i, l := range lines {
			rets[i] = hist.Call(c.id, l.product, Input{Kind: close, Qty: l.qty}, ReservationKey(key))
		}
		code, err = c.do(`mutation($id: ID!) { `+op+`(id: $id) { reservation { status } } }`, map[string]any{"id": id}, &res)
		switch {
		case err != nil:
			record(Output{Kind: Unknown})
			h.count(op + " unknown")
		case code == "OK":
			record(Output{Kind: OK})
			h.count(op + " OK")
		default:
			// Left out of the history: checkHolds fails the case.
			h.count(op + " " + code)
		}
	}
}

// reserveKeyPrefix is what the service puts before a reservation's
// idempotency key (its RESERVE rows, its reservation).
const reserveKeyPrefix = "reserve:"
