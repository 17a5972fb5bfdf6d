package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// server is a running instance of run on a free port: in this process, or
// in a child process that a test can kill outright.
type server struct {
	url  string
	stop func() // asks it to shut down gracefully
	kill func() // child processes only: SIGKILL, no shutdown at all
	done chan error

	mu       sync.Mutex
	logs     []string // the messages it logged
	grpcAddr string   // grpc-go's address, with INVENTORY_GRPC_ADDR
}

// logged reports whether the server logged a message containing msg.
func (s *server) logged(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logs {
		if strings.Contains(l, msg) {
			return true
		}
	}
	return false
}

// shutdown stops s gracefully and waits until it has.
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	s.stop()
	if err := <-s.done; err != nil {
		t.Fatalf("server stopped with %v", err)
	}
	s.done <- nil // for the cleanup
}

// startServer runs the service in this process on a free port, configured
// by env alone.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{stop: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	args := []string{"inventoryd", "-addr", "127.0.0.1:0"}
	if env["INVENTORY_ADDR"] != "" {
		args = args[:1]
	}
	go func() {
		err := run(ctx, args, getenv, pw, pw)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		s.done <- err
	}()
	s.await(t, pr)
	return s
}

// childEnv marks the environment of a child process started by
// startProcess: TestMain runs the service instead of the tests.
const childEnv = "INVENTORYD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startProcess runs the service in a child process (this test binary,
// see TestMain) on a free port, configured by env alone.
func startProcess(t *testing.T, env map[string]string) *server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-addr", "127.0.0.1:0")
	cmd.Env = []string{childEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{
		stop: func() { _ = cmd.Process.Signal(syscall.SIGTERM) },
		kill: func() { _ = cmd.Process.Kill() },
		done: make(chan error, 1),
	}
	// Wait only after the logs are read to the end, as StdoutPipe requires.
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.Copy(pw, out)
		err := cmd.Wait()
		pw.CloseWithError(fmt.Errorf("process exited: %v", err))
		s.done <- err
	}()
	s.await(t, pr)
	return s
}

// await records the log lines s writes to r until it is listening, sets its
// URL, and registers its shutdown as a cleanup.
func (s *server) await(t *testing.T, r io.Reader) {
	t.Helper()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			s.mu.Lock()
			s.logs = append(s.logs, line.Msg)
			if line.Msg == "gRPC listening" {
				s.grpcAddr = line.Addr
			}
			s.mu.Unlock()
			if line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, r)
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("server exited before listening: %v", <-s.done)
		}
		s.url = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(func() {
		s.stop()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30s")
		}
	})
}

func envFor(t *testing.T, driver string) map[string]string {
	return map[string]string{"INVENTORY_DB_DRIVER": driver, "INVENTORY_DB_DSN": gormstoretest.DSN(t, driver)}
}

type gqlResponse struct {
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func (s *server) graphql(t *testing.T, query string, vars map[string]any, out any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(s.url+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /query: %v", err)
	}
	defer resp.Body.Close()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode response (status %d): %v", resp.StatusCode, err)
	}
	if out != nil && len(r.Errors) == 0 {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode data %s: %v", r.Data, err)
		}
	}
	return r
}

func (s *server) createProduct(t *testing.T, sku string, stock int) string {
	t.Helper()
	var out struct {
		CreateProduct struct{ Product struct{ DatabaseID int64 } }
	}
	// The database ID: the product's ID on every transport.
	r := s.graphql(t, `mutation($sku: String!, $stock: Int) { createProduct(input: {sku: $sku, name: "Item", price: "1.00", initialStock: $stock, threshold: 2}) { product { databaseId } } }`,
		map[string]any{"sku": sku, "stock": stock}, &out)
	if len(r.Errors) > 0 {
		t.Fatalf("createProduct: %+v", r.Errors)
	}
	return strconv.FormatInt(out.CreateProduct.Product.DatabaseID, 10)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerEndpoints(t *testing.T) {
	s := startServer(t, envFor(t, gormstore.SQLite))
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/nope": 404} {
		if code, body := get(t, s.url+path); code != want {
			t.Errorf("GET %s = %d %s, want %d", path, code, body, want)
		}
	}
	if _, body := get(t, s.url+"/"); !strings.Contains(body, "graphiql") && !strings.Contains(body, "GraphiQL") {
		t.Errorf("GET / does not serve GraphiQL")
	}
	// GET /query answers queries, and refuses mutations.
	code, body := get(t, s.url+`/query?query={locations{code}}`)
	if code != 200 || !strings.Contains(body, "DEFAULT") {
		t.Errorf("GET query = %d %s", code, body)
	}
	code, _ = get(t, s.url+`/query?query=mutation{createLocation(input:{code:"X",name:"x"}){id}}`)
	if code < 400 {
		t.Errorf("GET mutation = %d, want a 4xx", code)
	}
	// The seed's REST routes and GraphQL share one service.
	id := s.createProduct(t, "REST-1", 10)
	resp, err := http.Post(s.url+"/stock/out", "application/json", strings.NewReader(`{"id": "REST-1", "count": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /stock/out = %d", resp.StatusCode)
	}
	var out struct{ Product struct{ Stock int } }
	s.graphql(t, `query($id: ID!) { product(id: $id) { stock } }`, map[string]any{"id": id}, &out)
	if out.Product.Stock != 6 {
		t.Fatalf("stock after REST stock-out = %d, want 6", out.Product.Stock)
	}
}

func TestHelpAndBadConfig(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"inventoryd", "--help"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "INVENTORY_DB_DSN") {
		t.Fatalf("--help output lacks the environment variables:\n%s", out.String())
	}
	err := run(context.Background(), []string{"inventoryd"}, func(k string) string {
		return map[string]string{"INVENTORY_DB_DRIVER": "oracle"}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "INVENTORY_DB_DRIVER") {
		t.Fatalf("bad driver: err = %v", err)
	}
}

// TestConcurrentStockOutThroughAPI sends 500 concurrent stockOut(quantity:
// 1) mutations over HTTP against 100 in stock.
func TestConcurrentStockOutThroughAPI(t *testing.T) {
	for _, driver := range gormstoretest.Drivers {
		t.Run(driver, func(t *testing.T) {
			s := startServer(t, envFor(t, driver))
			id := s.createProduct(t, "HOT", 100)
			const clients = 500
			var mu sync.Mutex
			codes := map[string]int{}
			var wg sync.WaitGroup
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			for range clients {
				wg.Go(func() {
					body, _ := json.Marshal(map[string]any{
						"query":     `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 1}) { movement { sequence } } }`,
						"variables": map[string]any{"id": id},
					})
					code := "transport error"
					resp, err := client.Post(s.url+"/query", "application/json", bytes.NewReader(body))
					if err == nil {
						var r gqlResponse
						if json.NewDecoder(resp.Body).Decode(&r) == nil {
							code = "OK"
							if len(r.Errors) > 0 {
								code = fmt.Sprint(r.Errors[0].Extensions["code"])
							}
						}
						resp.Body.Close()
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				})
			}
			wg.Wait()
			var out struct {
				Product struct {
					Stock     int
					Movements struct {
						Edges []struct{ Node struct{ Type string } }
					}
				}
			}
			s.graphql(t, `query($id: ID!) { product(id: $id) { stock movements(first: 100, order: DESC) { edges { node { type } } } } }`, map[string]any{"id": id}, &out)
			outs := 0
			for _, e := range out.Product.Movements.Edges {
				if e.Node.Type == "OUT" {
					outs++
				}
			}
			t.Logf("%s via GraphQL/HTTP: %v, stock %d, OUT rows %d", driver, codes, out.Product.Stock, outs)
			if codes["OK"] != 100 || codes["INSUFFICIENT_STOCK"] != 400 || len(codes) != 2 || out.Product.Stock != 0 || outs != 100 {
				t.Fatal("want exactly 100 OK and 400 INSUFFICIENT_STOCK, stock 0, 100 OUT rows")
			}
		})
	}
}

// TestGracefulShutdown stops the server while mutations are in flight. A
// request whose handler started gets its full answer; one that never reached
// a handler (refused, or reset in the accept backlog) changed nothing. So the
// units sold must equal the acknowledged stock-outs exactly.
func TestGracefulShutdown(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	s := startServer(t, env)
	id := s.createProduct(t, "DRAIN", 1000)
	const clients = 200
	var acked, notServed, cutOff sync.Map
	var wg sync.WaitGroup
	started := make(chan struct{}, clients)
	for i := range clients {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{
				"query":     `mutation($id: ID!, $key: String) { stockOut(input: {productId: $id, quantity: 1, idempotencyKey: $key}) { movement { sequence } } }`,
				"variables": map[string]any{"id": id, "key": fmt.Sprintf("drain-%d", i)},
			})
			started <- struct{}{}
			resp, err := http.Post(s.url+"/query", "application/json", bytes.NewReader(body))
			if err != nil {
				notServed.Store(i, err.Error())
				return
			}
			defer resp.Body.Close()
			var r gqlResponse
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
				cutOff.Store(i, fmt.Sprintf("status %d, decode %v, errors %+v", resp.StatusCode, err, r.Errors))
				return
			}
			acked.Store(i, true)
		})
	}
	for range clients / 4 {
		<-started
	}
	s.stop()
	if err := <-s.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s.done <- nil // for the cleanup
	wg.Wait()
	count := func(m *sync.Map) (n int) {
		m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	cutOff.Range(func(k, v any) bool { t.Errorf("request %v cut off: %v", k, v); return true })
	nAcked := count(&acked)
	t.Logf("acknowledged %d, not served %d, answered with an error %d", nAcked, count(&notServed), count(&cutOff))

	// Restart on the same database: the ledger holds every acknowledged
	// stock-out, and nothing else.
	s2 := startServer(t, env)
	var out struct{ Product struct{ Stock int } }
	s2.graphql(t, `query($id: ID!) { product(id: $id) { stock } }`, map[string]any{"id": id}, &out)
	if sold := 1000 - out.Product.Stock; sold != nAcked {
		t.Fatalf("%d units sold in the database, %d acknowledged", sold, nAcked)
	}
}

// TestPprofOnItsOwnListener: profiles are served only where
// INVENTORY_PPROF_ADDR says, never on the API's listener.
func TestPprofOnItsOwnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_PPROF_ADDR"] = addr
	s := startServer(t, env)
	if code, body := get(t, "http://"+addr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET pprof index = %d", code)
	}
	if code, _ := get(t, s.url+"/debug/pprof/"); code != 404 {
		t.Errorf("the API listener serves profiles: %d", code)
	}
}

// TestShutdownEndsEventStreams stops a server with an SSE subscription
// open: the stream ends and the server stops cleanly, well within its
// shutdown timeout, instead of waiting it out for the stream.
func TestShutdownEndsEventStreams(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_SHUTDOWN_TIMEOUT"] = "1m"
	s := startServer(t, env)
	req, err := http.NewRequest(http.MethodPost, s.url+"/query",
		strings.NewReader(`{"query":"subscription { stockChanged { sequence } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q, want an event stream", ct)
	}
	streamEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		streamEnded <- err
	}()
	ws := dialWS(t, s.url)
	ws.subscribe("1", `subscription { stockChanged { sequence } }`, nil)
	wsEnded := make(chan error, 1)
	go func() {
		for {
			if _, err := ws.next(); err != nil {
				wsEnded <- err
				return
			}
		}
	}()
	start := time.Now()
	s.stop()
	if err := <-s.done; err != nil {
		t.Fatalf("run: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	s.done <- nil // for the cleanup
	if err := <-streamEnded; err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
	// The WebSocket is closed with 1001 Going Away: clients reconnect.
	if err := <-wsEnded; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("the WebSocket ended with %v, want close 1001 Going Away", err)
	}
	t.Logf("stopped %v after SIGTERM with streams open", time.Since(start).Round(time.Millisecond))
}

// TestShutdownDrain: from SIGTERM on, /readyz answers 503 while requests
// are still served for INVENTORY_SHUTDOWN_DRAIN; a second SIGTERM ends the
// drain, and the server stops cleanly. /metrics says which duties this
// replica leads.
func TestShutdownDrain(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_SHUTDOWN_DRAIN"] = "10m" // ended by the second signal
	s := startProcess(t, env)
	id := s.createProduct(t, "DRAINING", 5)
	testenv.Eventually(t, "the reaper to lead", func() bool {
		_, body := get(t, s.url+"/metrics")
		return strings.Contains(body, `inventory_duty_leading{duty="reaper"} 1`)
	})

	s.stop()
	testenv.Eventually(t, "/readyz to answer 503 shutting down", func() bool {
		code, body := get(t, s.url+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"serving":"shutting down"`)
	})
	if code, _ := get(t, s.url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200", code)
	}
	var out struct{ Product struct{ Stock int } }
	s.graphql(t, `query($id: ID!) { product(id: $id) { stock } }`, map[string]any{"id": id}, &out)
	if out.Product.Stock != 5 {
		t.Fatalf("stock while draining = %d, want 5", out.Product.Stock)
	}
	s.stop() // the second signal
	if err := <-s.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s.done <- nil // for the cleanup
}

// TestVersion: -version prints what was built and starts nothing.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"inventoryd", "-version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("-version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "inventoryd ") || !strings.Contains(out.String(), "go1.") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("-version printed %q", out.String())
	}
}
