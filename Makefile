# Switchyard — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/switchyard
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/switchyard-llm/switchyard/internal/cli.version=$(VERSION)
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
IMAGE     ?= switchyard:$(VERSION)
BENCH     ?= .
BENCHPKGS ?= ./extproc/... ./internal/...
BENCHOUT  ?= bench.txt
ROUNDS    ?= 3
# make compare: both servers loaded in turn in slices this long (0: one after the other)
INTERLEAVE ?= 1s
LOAD_ADDR ?= 127.0.0.1:50051
LOAD_ADMIN ?= 127.0.0.1:9090
LOAD_ARGS ?= -c 32 -size 2k -d 20s
# vtprotobuf compiles in go-control-plane's reflection-free marshalers,
# which the gRPC codec uses (extproc/codec.go); without it the standard
# proto codec is used and everything still works, only slower.
GOTAGS    ?= vtprotobuf
export GOFLAGS += -tags=$(GOTAGS)

SHELL       := bash
.SHELLFLAGS := -o pipefail -ec

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build the static switchyard binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

.PHONY: run
run: ## run the ext_proc server on the embedded default config (gRPC :50051, admin :9090)
	$(GO) run . serve --log-format console

.PHONY: test
test: ## run all tests with -race, the Rego policy tests and the e2e suite
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	$(GO) run . policy test policies/
	$(GO) test -count=1 -run '^$$' -bench . -benchtime=1x $(PKGS) > /dev/null

.PHONY: e2e
e2e: ## run only the end-to-end suite (client -> envoysim -> switchyard -> fake providers)
	$(GO) test -race -count=1 ./test/e2e/...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s); see test/fuzz/run.sh
	FUZZTIME=$(FUZZTIME) GO=$(GO) test/fuzz/run.sh

.PHONY: fuzz-corpus
fuzz-corpus: ## fuzz every target for FUZZTIME and keep up to 20 small new inputs each under testdata/fuzz
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz; \
	for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null; \
	    mkdir -p $$dir/testdata/fuzz/$$f; \
	    find $$cache/$$pkg/$$f -type f -size -4k 2>/dev/null | head -20 | xargs -r cp -t $$dir/testdata/fuzz/$$f; \
	    echo "$$pkg $$f: $$(ls $$dir/testdata/fuzz/$$f | wc -l) corpus files"; \
	  done; \
	done

.PHONY: bench
bench: ## run the hot-path benchmarks BENCHCOUNT times into BENCHOUT (default bench.txt) for benchstat
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) $(BENCHPKGS) | tee $(BENCHOUT)

.PHONY: benchcmp
benchcmp: ## compare two bench outputs: make benchcmp OLD=old.txt NEW=new.txt
	$(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da $(OLD) $(NEW)

.PHONY: load
load: ## load-test a running Switchyard (LOAD_ADDR, LOAD_ADMIN, LOAD_ARGS)
	$(GO) run ./test/load -addr $(LOAD_ADDR) -admin $(LOAD_ADMIN) $(LOAD_ARGS)

.PHONY: compare
compare: build ## Switchyard vs the null processor on the issue-9 scenarios (ROUNDS rounds each, INTERLEAVE slices)
	-$(GO) run ./test/load -compare -build=false -rounds $(ROUNDS) -interleave $(INTERLEAVE) -d 20s -c 32 -size 2k -json perf-closed-2k.json
	-$(GO) run ./test/load -compare -build=false -rounds $(ROUNDS) -interleave $(INTERLEAVE) -d 20s -c 32 -size 64k -json perf-closed-64k.json
	-$(GO) run ./test/load -compare -build=false -rounds $(ROUNDS) -interleave $(INTERLEAVE) -d 20s -rate 2000 -size 2k -json perf-rate-2000.json

.PHONY: soak
soak: ## 15 minutes at 1,000 requests/s with a config reload every 10 s
	test/load/soak.sh 15m 1000

.PHONY: lint
lint: ## gofmt check, go vet and golangci-lint (installed on demand)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run $(PKGS)

.PHONY: envoy-config
envoy-config: ## regenerate envoy/envoy.yaml and envoy/istio from the default config
	$(GO) test ./internal/envoyconf/ -run . -update

.PHONY: docker
docker: ## build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: clean
clean: ## remove build output
	rm -rf bin bench.txt perf-*.json soak.json
