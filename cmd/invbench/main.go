// Command invbench is the inventory service's load generator. It talks
// GraphQL over HTTP like a real client, either to a running server (-url) or,
// with -compare, to a fresh server per stock strategy and lock backend, so
// the seed's table (no lock, database row lock, Redsync) and the production
// path come out side by side from one run, each row with an oversell audit.
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
