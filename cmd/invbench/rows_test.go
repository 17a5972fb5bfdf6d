package main

import (
	"slices"
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
