// Command invbench is the inventory service's load generator. It talks
// GraphQL over HTTP like a real client, either to a running server (-url) or,
// with -compare, to a fresh server per stock strategy and lock backend, so
// the seed's table (no lock, database row lock, Redsync) and the production
// path come out side by side from one run, each row with an oversell audit.
//
// This package is the command: flags, the -url, -compare and -soak runs,
// and the report. Its parts live below it in internal/: load (the
// scenarios and the workers that send them), transport (GraphQL, REST,
// gRPC and broker commands), audit (stock and ledger against what was
// sold), metrics (a server's /metrics: soak gauges, the publisher's lag),
// cpu, and server (building and running inventoryd).
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "invbench:", err)
		os.Exit(1)
	}
}
