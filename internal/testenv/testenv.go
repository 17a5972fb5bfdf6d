// Package testenv holds what tests share about their environment: what a
// test does when a real component it needs (PostgreSQL, redis-server, etcd)
// is missing (skip it locally, fail it under INVENTORY_TEST_STRICT=1, set by
// `make test` under CI), and a TCP proxy that cuts connections on demand.
//
// The packages below it start the real servers tests use, so that no
// test-only package sits among the production ones: etcdtest (embedded etcd
// clusters), natstest (nats-server with JetStream), redistest (redis-server
// processes), pgtest (a PostgreSQL server of the test's own, to kill),
// gormstoretest (SQLite and PostgreSQL databases), telemetrytest (an OTLP
// receiver and trace checks), oidctest (an OpenID provider) and inventorytest (an inventory service on
// one of those databases). Conformance suites stay beside the contract
// they check (lock/locktest, broker/brokertest).
//
// This package imports only the standard library, so any package's own
// tests, internal ones included, can use it without an import cycle.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Strict reports whether a missing test dependency must fail the run.
func Strict() bool { return os.Getenv("INVENTORY_TEST_STRICT") == "1" }

// SkipOrFail skips the test, or fails it in strict mode.
func SkipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if Strict() {
		tb.Fatalf("INVENTORY_TEST_STRICT=1: %s", why)
	}
	tb.Skip(why)
}

// NodePackages skips (or, strict, fails) tb unless node is in PATH and
// every npm package of pkgs is installed in dir, the npm project (its
// lockfile) of a test's node scripts; target is the make target that
// installs them. It reports whether they are there.
func NodePackages(tb testing.TB, dir, target string, pkgs ...string) bool {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		SkipOrFail(tb, "no node in PATH (apt-get install nodejs npm)")
		return false
	}
	for _, pkg := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg))); err != nil {
			SkipOrFail(tb, pkg+" is not installed in "+dir+": make "+target)
			return false
		}
	}
	return true
}
