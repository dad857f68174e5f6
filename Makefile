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
fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: bench
bench: ## run the hot-path benchmarks BENCHCOUNT times into bench.txt (compare with benchstat)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) $(PKGS) | tee bench.txt

.PHONY: lint
lint: ## gofmt check, go vet and golangci-lint (installed on demand)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2 run $(PKGS)

.PHONY: envoy-config
envoy-config: ## regenerate envoy/envoy.yaml and envoy/istio from the default config
	$(GO) test ./internal/envoyconf/ -run . -update

.PHONY: docker
docker: ## build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: clean
clean: ## remove build output
	rm -rf bin bench.txt
