// Command kfakeserver runs franz-go's in-process Kafka cluster (kfake) as
// a process of its own, for tests that kill and restart the broker: no
// Kafka broker can be installed on the machines the tests run on (it needs
// a JVM and registries they cannot reach), and kfake speaks the Kafka
// protocol (transactions, consumer groups, persistence included).
//
//	kfakeserver -ports 9092,9093,9094 -data-dir DIR
//
// prints its listen addresses, one per line, and serves until SIGTERM
// (closing its store) or SIGKILL (what was written is on disk: every
// write is synced).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ports := flag.String("ports", "0,0,0", "one port per broker, comma-separated (0: a free one)")
	dir := flag.String("data-dir", "", "the store (empty: memory only)")
	partitions := flag.Int("partitions", 6, "partitions of an automatically created topic")
	flag.Parse()
	var ps []int
	for _, p := range strings.Split(*ports, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			fmt.Fprintf(os.Stderr, "kfakeserver: -ports: %v\n", err)
			os.Exit(2)
		}
		ps = append(ps, n)
	}
	opts := []kfake.Opt{kfake.NumBrokers(len(ps)), kfake.Ports(ps...), kfake.DefaultNumPartitions(*partitions)}
	if *dir != "" {
		opts = append(opts, kfake.DataDir(*dir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeserver: %v\n", err)
		os.Exit(1)
	}
	for _, a := range c.ListenAddrs() {
		fmt.Println(a)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	<-sigs
	c.Close()
}
