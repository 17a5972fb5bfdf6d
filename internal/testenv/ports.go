package testenv

import (
	"fmt"
	"net"
	"slices"
)

// FreePorts returns n distinct loopback ports that were free a moment ago,
// none of them in avoid (the port of a shared server a test must never
// start its own on).
func FreePorts(n int, avoid ...int) ([]int, error) {
	ports := make([]int, 0, n)
	// Every listener stays open until all are chosen, so the ports differ.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		if p := ln.Addr().(*net.TCPAddr).Port; !slices.Contains(avoid, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}
