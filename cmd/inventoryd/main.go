// Command inventoryd runs the inventory service.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "inventoryd:", err)
		os.Exit(1)
	}
}
