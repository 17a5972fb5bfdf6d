//go:build !benchstrategies

package app

// benchStrategies is empty in production binaries: they combine (see
// Strategy).
var benchStrategies map[Strategy]benchStrategy
