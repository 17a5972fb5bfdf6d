//go:build tools

// Package apiserver pins the kube-apiserver that deploy/helm/charttest
// applies the chart to (a server-side dry run). It is a module of its own so
// that the inventory module does not depend on k8s.io/kubernetes; `make
// kube-apiserver` builds the binary from it. k8s.io/kubernetes refers to its
// staging modules (k8s.io/api, k8s.io/apiserver, ...) as v0.0.0 and replaces
// them with local directories, so `go install k8s.io/kubernetes/...@version`
// is refused: go.mod replaces each of them with the matching published v0
// release instead.
package apiserver

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
