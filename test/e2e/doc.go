// Package e2e is Switchyard's end-to-end suite: a client (the official
// openai-go SDK, or raw net/http where headers and SSE bytes matter) talks to
// envoysim loaded from the checked-in envoy/envoy.yaml, which runs the real
// ext_proc server in process (built the way `switchyard serve` builds it)
// and forwards to fake OpenAI-compatible providers. The shipped Envoy
// config is what the tests run; only the addresses are pointed at loopback.
//
// Run it with `make e2e` (go test -race -count=1 ./test/e2e/...). The
// savings run prints its numbers with
// `go test -race -count=1 -run 'TestEndToEnd/Savings' -v ./test/e2e/`.
package e2e
