package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSelectRows(t *testing.T) {
	all := compareRows()
	got, err := selectRows(all, []string{"flash/combine", " ceiling"})
	if err != nil {
		t.Fatal(err)
	}
	if names := rowNames(got); !slices.Equal(names, []string{"ceiling", "flash/combine"}) {
		t.Errorf("rows = %v, want the comparison's order", names)
	}
	if _, err := selectRows(all, []string{"flash/nope"}); err == nil || !strings.Contains(err.Error(), "flash/nope") {
		t.Errorf("unknown row: err = %v", err)
	}
	if got, _ := selectRows(all, nil); len(got) != len(all) {
		t.Errorf("no names kept %d rows, want all %d", len(got), len(all))
	}
}

func TestParseConfig(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{},
		{"-compare", "-url", "http://x"},
		{"-url", "http://x", "-scenario", "nope"},
		{"-compare", "-rows", "nope"},
		{"-compare", "-format", "html"},
		{"-compare", "-clients", "0"},
		{"-url", "http://x", "-transport", "nats", "-scenario", "ceiling"},
		{"-url", "http://x", "-transport", "nats", "-scenario", "mixed"},
	} {
		if _, err := parseConfig(args, env, &strings.Builder{}); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
	cfg, err := parseConfig([]string{"-compare", "-rows", "ceiling,flash/combine"}, func(k string) string {
		return map[string]string{"INVENTORY_TEST_POSTGRES_ADMIN_DSN": "postgres://a@b/c"}[k]
	}, &strings.Builder{})
	if err != nil || cfg.pgAdminDSN != "postgres://a@b/c" || len(cfg.rows) != 2 || cfg.clients != 64 {
		t.Errorf("cfg = %+v, err = %v", cfg, err)
	}
}

func TestServerEnvBroker(t *testing.T) {
	rows, err := selectRows(compareRows(), []string{"flash/combine", "flash/combine/events", "flash/combine/nats"})
	if err != nil {
		t.Fatal(err)
	}
	nt := natsTarget{url: "nats://n:4222", stream: "INVBENCH_1_2", prefix: "invbench_1_2"}
	db := &database{driver: "postgres", dsn: "postgres://x"}
	for _, r := range rows {
		env := r.serverEnv(db, "r:6379", "e:2379", nt)
		if r.broker == "" {
			if _, ok := env["INVENTORY_BROKER"]; ok {
				t.Errorf("%s: INVENTORY_BROKER set without a broker", r.name)
			}
			continue
		}
		want := map[string]string{"INVENTORY_BROKER": "nats", "INVENTORY_NATS_URL": nt.url, "INVENTORY_BROKER_STREAM": nt.stream,
			"INVENTORY_BROKER_PREFIX": nt.prefix, "INVENTORY_BROKER_COMMANDS": strconv.FormatBool(r.transport == transportNATS),
			"INVENTORY_LOCK_BACKEND": "redsync", "INVENTORY_STOCK_STRATEGY": "combine"}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s = %q, want %q", r.name, k, env[k], v)
			}
		}
	}
	if rows[2].transport != transportNATS || rows[1].transport != "" {
		t.Errorf("events row speaks %q, nats row %q", rows[1].transport, rows[2].transport)
	}
	if a, b := rowNATS("u"), rowNATS("u"); a.stream == b.stream || a.prefix != strings.ToLower(a.stream) {
		t.Errorf("row streams %+v and %+v: want unique, prefix in lower case", a, b)
	}
}
