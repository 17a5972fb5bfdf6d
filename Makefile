# Run `make help` for the targets.
GO ?= go

.PHONY: help run cluster cluster-stop demo-data build test test-faults fuzz generate check-generated check-compose check-chart helm kube-apiserver lint oidc-provider-deps oidc-provider federation-deps graphql-http-deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## run the service on SQLite with the in-process lock (http://127.0.0.1:8080/)
	$(GO) run ./cmd/inventoryd

cluster: ## start a local cluster in .cluster/: PostgreSQL and etcd of its own, two replicas on :8081 and :8082 (scripts/cluster.sh)
	scripts/cluster.sh start

cluster-stop: ## stop the local cluster's processes, by their pids (its data stays in .cluster/)
	scripts/cluster.sh stop

demo-data: ## fill a running server (INVENTORY_URL, default http://127.0.0.1:8080) with a small shop's products; safe to run twice
	scripts/demo-data.sh

build: ## build bin/inventoryd
	CGO_ENABLED=0 $(GO) build -o bin/inventoryd ./cmd/inventoryd

test: ## run all tests with -race on SQLite and PostgreSQL (see scripts/test.sh)
	./scripts/test.sh

# The OpenID provider the authentication tests run (internal/testenv/oidctest):
# the npm package oidc-provider, pinned by its lockfile.
OIDC_PROVIDER_DIR := internal/testenv/oidctest/testdata
oidc-provider-deps: ## install the tests' OpenID provider with npm ci from its lockfile, unless installed (make test does)
	@test $(OIDC_PROVIDER_DIR)/node_modules/.package-lock.json -nt $(OIDC_PROVIDER_DIR)/package-lock.json || \
		{ echo "installing the test OpenID provider (npm ci in $(OIDC_PROVIDER_DIR))"; cd $(OIDC_PROVIDER_DIR) && npm ci --no-audit --no-fund --loglevel=error; }

# The GraphQL-over-HTTP spec's audit suite the tests run against /query
# (internal/testenv/gqlaudit): the npm package graphql-http, pinned by its
# lockfile.
GRAPHQL_HTTP_DIR := internal/testenv/gqlaudit/testdata
graphql-http-deps: ## install the GraphQL-over-HTTP audit (npm graphql-http) with npm ci from its lockfile, unless installed (make test does)
	@test $(GRAPHQL_HTTP_DIR)/node_modules/.package-lock.json -nt $(GRAPHQL_HTTP_DIR)/package-lock.json || \
		{ echo "installing the GraphQL-over-HTTP audit (npm ci in $(GRAPHQL_HTTP_DIR))"; cd $(GRAPHQL_HTTP_DIR) && npm ci --no-audit --no-fund --loglevel=error; }

oidc-provider: oidc-provider-deps ## run an OpenID provider with demo clients on 127.0.0.1:9400, for the walkthrough of docs/AUTH.md
	node $(OIDC_PROVIDER_DIR)/provider.mjs

# Apollo Federation for graph's composition and gateway tests
# (internal/testenv/federationtest): @apollo/composition, @apollo/gateway,
# @apollo/server and @apollo/subgraph, pinned by their lockfile.
FEDERATION_DIR := internal/testenv/federationtest/testdata
federation-deps: ## install the federation tests' npm packages with npm ci from their lockfile, unless installed (make test does)
	@test $(FEDERATION_DIR)/node_modules/.package-lock.json -nt $(FEDERATION_DIR)/package-lock.json || \
		{ echo "installing the federation test packages (npm ci in $(FEDERATION_DIR))"; cd $(FEDERATION_DIR) && npm ci --no-audit --no-fund --loglevel=error; }

test-faults: ## the fault suite: replicas as processes, faults injected, histories checked (see docs/RELIABILITY.md)
	TEST_TAGS=faults GO_TEST_PKGS=./internal/faults GO_TEST_FLAGS="-v -run TestFaults" ./scripts/test.sh

# A count of executions, not a duration: Go 1.26's fuzzing coordinator can report
# "context deadline exceeded" when a duration runs out while a worker is busy
# (golang/go#75804, fixed in Go 1.27), failing a run that found nothing.
FUZZTIME ?= 30000x
fuzz: ## run each fuzz target FUZZTIME (default 30000x: 30,000 executions, 8-18 s each here); a failing input lands in testdata/fuzz/
	$(GO) test -run '^$$' -fuzz '^FuzzGraphQL$$' -fuzztime $(FUZZTIME) ./graph
	$(GO) test -run '^$$' -fuzz '^FuzzREST$$' -fuzztime $(FUZZTIME) ./internal/rest
	$(GO) test -run '^$$' -fuzz '^FuzzGRPC$$' -fuzztime $(FUZZTIME) ./internal/grpcapi
	$(GO) test -run '^$$' -fuzz '^FuzzParsePrice$$' -fuzztime $(FUZZTIME) ./internal/inventory
	$(GO) test -run '^$$' -fuzz '^FuzzProductInput$$' -fuzztime $(FUZZTIME) ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzToken$$' -fuzztime $(FUZZTIME) ./internal/auth

generate: ## regenerate graph/ from schema.graphqls, and internal/grpcapi/gen from proto/ (after buf lint)
	$(GO) generate ./...

GENERATED := graph/ internal/grpcapi/gen/

check-generated: generate ## fail if generated code is stale
	@git diff --exit-code --stat -- $(GENERATED) || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard $(GENERATED))" || { echo "untracked generated files in $(GENERATED)"; exit 1; }

lint: ## gofmt and go vet (also of the benchmark build, -tags benchstrategies)
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags benchstrategies ./...

check-compose: ## validate docker-compose.yml (installs docker-compose under CI if missing)
	@command -v docker-compose >/dev/null || { [ "$$CI" = "true" ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
	docker-compose -f docker-compose.yml config -q
	INVENTORY_BROKER=kafka docker-compose -f docker-compose.yml --profile kafka --profile rabbitmq --profile oidc config -q

# The helm the chart's checks run (deploy/helm/charttest), built from source:
# a few minutes, once per machine.
HELM_VERSION := v4.3.2
helm: ## install helm (HELM_VERSION) into GOPATH/bin with go install, unless one is there or on PATH
	@command -v helm >/dev/null || test -x "$$($(GO) env GOPATH)/bin/helm" || \
		{ echo "installing helm $(HELM_VERSION) (go install, a few minutes)"; $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION); }

# The kube-apiserver the chart is applied to (a server-side dry run, in
# deploy/helm/charttest), built from the module deploy/helm/apiserver, whose
# go.mod pins its version: 10-25 minutes on two cores, once per machine, to a
# path named after the version (a new pin builds anew).
KUBE_APISERVER_VERSION = $(shell $(GO) -C deploy/helm/apiserver list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_apiserver_parts = $(subst ., ,$(patsubst v%,%,$(KUBE_APISERVER_VERSION)))
KUBE_APISERVER = $(shell $(GO) env GOPATH)/bin/kube-apiserver-$(KUBE_APISERVER_VERSION)
kube-apiserver: ## build kube-apiserver (the version deploy/helm/apiserver/go.mod pins) into GOPATH/bin/kube-apiserver-VERSION, unless it is there
	@v='$(KUBE_APISERVER_VERSION)'; out='$(KUBE_APISERVER)'; test -n "$$v" || exit 1; test -x "$$out" || { \
		echo "building kube-apiserver $$v into $$out (10-25 minutes, once)"; \
		$(GO) -C deploy/helm/apiserver build -o "$$out.tmp" \
			-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$$v -X k8s.io/component-base/version.gitMajor=$(word 1,$(kube_apiserver_parts)) -X k8s.io/component-base/version.gitMinor=$(word 2,$(kube_apiserver_parts))" \
			k8s.io/kubernetes/cmd/kube-apiserver && mv "$$out.tmp" "$$out"; }

check-chart: ## helm lint --strict and helm template of deploy/helm/inventory under several value sets, strictly decoded, checked against the binary and dry-run on a kube-apiserver (make test runs it too)
	@[ "$$CI" != "true" ] || { $(MAKE) -s helm && $(MAKE) -s kube-apiserver; }
	INVENTORY_TEST_STRICT=$${INVENTORY_TEST_STRICT:-$$([ "$$CI" = true ] && echo 1)} $(GO) test -count=1 ./deploy/helm/charttest
