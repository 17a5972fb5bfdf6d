package main

import (
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestRedisCluster runs two replicas sharing PostgreSQL and a Redis Cluster
// of three masters with a replica each (INVENTORY_REDIS_MODE=cluster, every
// node a seed): the flash sale sells exactly the stock; events cross
// through the cluster's pub/sub alone (the ledger is polled once a minute);
// the reaper is elected, hands over when its leader stops, and is taken
// over when its leader is killed. The failover of a master under load is a
// case of the fault suite (internal/faults).
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	env := redsyncEnv(dsn, c.Addrs()...)
	env["INVENTORY_REDIS_MODE"] = "cluster"
	env["INVENTORY_EVENT_POLL_INTERVAL"] = "1m"
	env["INVENTORY_REAP_INTERVAL"] = "100ms"
	env["INVENTORY_LOCK_TTL"] = "2s"
	a, b := startServer(t, env), startServer(t, env)
	t.Run("FlashSale", func(t *testing.T) { sellHot(t, a, b) })
	t.Run("EventsCross", func(t *testing.T) { testEventsCross(t, a, b) })
	t.Run("ReservationExpiresAcross", func(t *testing.T) { testReservationExpiresAcross(t, a, b) })
	t.Run("NoOverReservation", func(t *testing.T) { testNoOverReservation(t, a, b) })
	var survivor *server
	t.Run("LeaderStops", func(t *testing.T) { survivor = testLeaderStops(t, a, b) })
	t.Run("LeaderKilled", func(t *testing.T) { testLeaderKilled(t, env, survivor) })
}
