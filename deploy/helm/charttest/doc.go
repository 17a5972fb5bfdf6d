// Package charttest checks the Helm chart in ../inventory: helm lint
// --strict and helm template under several value sets, every rendered
// document decoded strictly into the Kubernetes API types (and the
// Prometheus Operator's), the chart held to what the inventoryd binary
// really does (probe paths, ports, settings, user, shutdown), and every
// document applied to a real kube-apiserver started by the test as a
// server-side dry run (apiserver_test.go). It lives beside the chart, not
// in it, so that helm does not package it.
package charttest
