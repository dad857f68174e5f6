package envoysim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Tests for the fields the generated Switchyard bootstrap (envoy/envoy.yaml)
// uses beyond the core ext_proc machinery: transport_socket_matches,
// auto_host_rewrite with endpoint hostnames, retriable-headers, the
// max_retries circuit breaker, suppress_envoy_headers, response headers of a
// route, the HTTP/1 header limits, the listener buffer limit, cluster
// metadata attributes and dns_lookup_family.

// upParts builds a bootstrap whose cluster "backend" is STRICT_DNS with
// priority 0 at a.example:443 and priority 1 at b.example:8000 (overridden
// to loopback backends by upSim).
type upParts struct {
	hcmExtra      string // extra HCM fields (column 0)
	routes        string // route list items (column 0); default upRoute("")
	filters       string // downstream ext_proc filters (column 0)
	suppress      bool   // router suppress_envoy_headers
	clusterExtra  string // extra fields of cluster backend (column 0)
	ep0Extra      string // extra fields of the priority-0 lb_endpoint (column 0)
	ep0Hostname   string // priority-0 endpoint hostname
	upstreamProc  string // upstream ext_proc fields (column 0); "" = none
	listenerExtra string // extra listener fields (column 0)
}

// upRoute routes /v1/ to backend with auto_host_rewrite and a retry policy
// (previous_priorities, 1 retry, 1 ms back-off) plus extra retry fields.
func upRoute(retryExtra string) string {
	return "- name: r\n  match: {prefix: /}\n  route:\n    cluster: backend\n    auto_host_rewrite: true\n    retry_policy:\n" +
		indent("num_retries: 1\nretry_back_off: {base_interval: 0.001s}\n"+prevPrio+"\n"+retryExtra, 6) + "\n"
}

func upYAML(p upParts) string {
	if p.routes == "" {
		p.routes = upRoute("retry_on: 5xx")
	}
	var b strings.Builder
	b.WriteString("static_resources:\n  listeners:\n  - name: l\n    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}\n")
	if p.listenerExtra != "" {
		b.WriteString(indent(p.listenerExtra, 4) + "\n")
	}
	b.WriteString(`    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
`)
	if p.hcmExtra != "" {
		b.WriteString(indent(p.hcmExtra, 10) + "\n")
	}
	b.WriteString("          route_config:\n            virtual_hosts:\n            - name: vh\n              domains: [\"*\"]\n              routes:\n")
	b.WriteString(indent(p.routes, 14) + "\n")
	b.WriteString("          http_filters:\n")
	if p.filters != "" {
		b.WriteString(indent(p.filters, 10) + "\n")
	}
	suppress := "false"
	if p.suppress {
		suppress = "true"
	}
	b.WriteString(`          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, suppress_envoy_headers: ` + suppress + `}
  clusters:
  - name: extproc
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: extproc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.9.9.9, port_value: 50051}}}}]}]
  - name: backend
    type: STRICT_DNS
`)
	if p.clusterExtra != "" {
		b.WriteString(indent(p.clusterExtra, 4) + "\n")
	}
	if p.upstreamProc != "" {
		b.WriteString(`    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http_protocol_options: {}}
        http_filters:
        - name: envoy.filters.http.ext_proc
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
            grpc_service: {envoy_grpc: {cluster_name: extproc}}
`)
		b.WriteString(indent(p.upstreamProc, 12) + "\n")
		b.WriteString(`        - name: envoy.filters.http.upstream_codec
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
`)
	}
	b.WriteString("    load_assignment:\n      cluster_name: backend\n      endpoints:\n      - priority: 0\n        lb_endpoints:\n")
	b.WriteString("        - endpoint:\n            address: {socket_address: {address: a.example, port_value: 443}}\n")
	if p.ep0Hostname != "" {
		b.WriteString("            hostname: " + p.ep0Hostname + "\n")
	}
	if p.ep0Extra != "" {
		b.WriteString(indent(p.ep0Extra, 10) + "\n")
	}
	b.WriteString("      - priority: 1\n        lb_endpoints:\n        - endpoint: {address: {socket_address: {address: b.example, port_value: 8000}}}\n")
	return b.String()
}

type upSetup struct {
	parts  upParts
	p0, p1 http.HandlerFunc
	proc   handlers
	modify func(*Options)
}

func upSim(t *testing.T, s upSetup) (*harness, *backend, *backend, *procServer) {
	t.Helper()
	p0, p1 := startBackend(t, s.p0), startBackend(t, s.p1)
	var proc *procServer
	if s.parts.upstreamProc != "" || s.parts.filters != "" {
		proc = startProc(t, s.proc.script())
	}
	h := newSim(t, simSetup{yaml: upYAML(s.parts), proc: proc, modify: func(o *Options) {
		o.AddressOverrides["a.example:443"] = p0.addr()
		o.AddressOverrides["b.example:8000"] = p1.addr()
		o.PlaintextTLS = true
		if s.modify != nil {
			s.modify(o)
		}
	}})
	return h, p0, p1, proc
}

func TestGeneratedBootstrapsLoad(t *testing.T) {
	for _, f := range []string{"../../envoy/envoy.yaml", "../../envoy/envoy-compose.yaml"} {
		t.Run(f, func(t *testing.T) {
			cfg, err := LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Every name resolves to loopback: New must not need the network.
			lookup := func(context.Context, string) ([]net.IP, error) { return []net.IP{net.IPv4(127, 0, 0, 1)}, nil }
			e, err := New(cfg, Options{LookupIP: lookup, PlaintextTLS: true})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if !slices.Contains(cfg.ClusterNames(), "target-reasoning") {
				t.Fatalf("clusters %v", cfg.ClusterNames())
			}
		})
	}
	t.Run("TLS providers need PlaintextTLS", func(t *testing.T) {
		cfg, err := LoadFile("../../envoy/envoy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, Options{LookupIP: func(context.Context, string) ([]net.IP, error) { return []net.IP{net.IPv4(127, 0, 0, 1)}, nil }})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "tls-api.vendor-a.example") {
			t.Fatalf("New without PlaintextTLS: %v", err)
		}
	})
	t.Run("generated hosts: TLS per endpoint, hostnames", func(t *testing.T) {
		cfg, err := LoadFile("../../envoy/envoy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(cfg, Options{PlaintextTLS: true, AddressOverrides: map[string]string{
			"api.vendor-a.example:443": "127.0.0.1:1", "api.vendor-b.example:443": "127.0.0.1:2", "vllm.llm.svc.cluster.local:8000": "127.0.0.1:3"}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		got := e.Hosts("target-fast")
		if len(got) != 2 || got[0].TransportSocket != "tls-api.vendor-a.example" || !got[0].TLS || got[0].Hostname != "api.vendor-a.example" ||
			got[1].TransportSocket != "tls-api.vendor-b.example" || got[1].Priority != 1 {
			t.Fatalf("target-fast hosts %+v", got)
		}
		on := e.Hosts("target-onprem")
		if len(on) != 1 || on[0].TLS || on[0].TransportSocket != "default" || on[0].Hostname != "vllm.llm.svc.cluster.local:8000" {
			t.Fatalf("target-onprem hosts %+v", on)
		}
	})
}

const tlsMatchA = `transport_socket_matches:
- name: tls-a
  match: {tls: a}
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: a.example}`

func TestTransportSocketMatches(t *testing.T) {
	epA := "metadata: {filter_metadata: {envoy.transport_socket_match: {tls: a}}}"
	for _, tc := range []struct {
		name         string
		clusterExtra string
		ep0Extra     string
		want         [2]string // socket of priority 0, 1
		wantTLS      [2]bool
	}{
		{"endpoint metadata selects its match, others get the default", tlsMatchA, epA, [2]string{"tls-a", "default"}, [2]bool{true, false}},
		{"a label with another value does not match", tlsMatchA, "metadata: {filter_metadata: {envoy.transport_socket_match: {tls: b}}}", [2]string{"default", "default"}, [2]bool{false, false}},
		{"first match wins", tlsMatchA + "\n- {name: plain, match: {tls: a}, transport_socket: {name: envoy.transport_sockets.raw_buffer}}", epA, [2]string{"tls-a", "default"}, [2]bool{true, false}},
		{"an empty match matches every endpoint", "transport_socket_matches:\n- {name: all, match: {}, transport_socket: {name: envoy.transport_sockets.tls}}", "", [2]string{"all", "all"}, [2]bool{true, true}},
		{"cluster transport_socket is the default", "transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext}}", "", [2]string{"default", "default"}, [2]bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := upYAML(upParts{clusterExtra: tc.clusterExtra, ep0Extra: tc.ep0Extra})
			cfg, err := Load([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			ov := map[string]string{"a.example:443": "127.0.0.1:1", "b.example:8000": "127.0.0.1:2", "10.9.9.9:50051": "127.0.0.1:3"}
			e, err := New(cfg, Options{AddressOverrides: ov, PlaintextTLS: true})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			hs := e.Hosts("backend")
			for i := range 2 {
				if hs[i].TransportSocket != tc.want[i] || hs[i].TLS != tc.wantTLS[i] {
					t.Errorf("priority %d: socket %q tls %v, want %q %v", i, hs[i].TransportSocket, hs[i].TLS, tc.want[i], tc.wantTLS[i])
				}
			}
			// TransportSocketMatcher counts the hosts resolved to each match.
			st := e.Stats()
			if st["cluster.backend."+tc.want[0]+".total_match_count"] == 0 {
				t.Errorf("no total_match_count for %q: %v", tc.want[0], st)
			}
			_, err = New(cfg, Options{AddressOverrides: ov})
			anyTLS := tc.wantTLS[0] || tc.wantTLS[1]
			if anyTLS != (err != nil) {
				t.Errorf("New without PlaintextTLS: err %v, want an error %v", err, anyTLS)
			}
		})
	}
	t.Run("attempts report their socket", func(t *testing.T) {
		h, _, _, _ := upSim(t, upSetup{parts: upParts{clusterExtra: tlsMatchA, ep0Extra: epA}, p0: statusCode(503), p1: status200("p1")})
		if r := h.post(`{}`, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		e := h.lastLog()
		if len(e.Attempts) != 2 || e.Attempts[0].TransportSocket != "tls-a" || e.Attempts[1].TransportSocket != "default" {
			t.Fatalf("attempts %+v", e.Attempts)
		}
	})
}

func TestAutoHostRewrite(t *testing.T) {
	t.Run("each attempt carries its host's hostname", func(t *testing.T) {
		h, p0, p1, _ := upSim(t, upSetup{parts: upParts{ep0Hostname: "api.a.example"}, p0: statusCode(503), p1: status200("p1")})
		r := h.do(http.MethodPost, "/v1/x", `{}`, map[string]string{"Host": "client.example"})
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		// Priority 0 has an explicit hostname; priority 1 is STRICT_DNS
		// without one, so its hostname is the DNS name (no port).
		if got := p0.requests()[0].host; got != "api.a.example" {
			t.Errorf("priority 0 Host %q", got)
		}
		if got := p1.requests()[0].host; got != "b.example" {
			t.Errorf("priority 1 Host %q", got)
		}
		e := h.lastLog()
		if e.Attempts[0].Authority != "api.a.example" || e.Attempts[1].Authority != "b.example" || e.Authority != "client.example" {
			t.Fatalf("access log %+v", e)
		}
	})
	t.Run("without auto_host_rewrite the client's Host goes upstream", func(t *testing.T) {
		routes := "- match: {prefix: /}\n  route: {cluster: backend}\n"
		h, p0, _, _ := upSim(t, upSetup{parts: upParts{ep0Hostname: "api.a.example", routes: routes}, p0: status200("p0")})
		h.do(http.MethodPost, "/v1/x", `{}`, map[string]string{"Host": "client.example"})
		if got := p0.requests()[0].host; got != "client.example" {
			t.Fatalf("Host %q", got)
		}
	})
	t.Run("a STATIC host without hostname is not rewritten", func(t *testing.T) {
		proc := startProc(t, nil)
		p0 := startBackend(t, nil)
		routes := "- match: {prefix: /}\n  route: {cluster: backend, auto_host_rewrite: true}\n"
		h := newSim(t, simSetup{yaml: buildYAML(cfgParts{routes: routes}), proc: proc, p0: p0})
		h.do(http.MethodPost, "/", `{}`, map[string]string{"Host": "client.example"})
		if got := p0.requests()[0].host; got != "client.example" {
			t.Fatalf("Host %q", got)
		}
	})
}

func TestRetriableHeaders(t *testing.T) {
	withHeader := func(k, v string, code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(k, v)
			w.WriteHeader(code)
			_, _ = w.Write([]byte("p0"))
		}
	}
	for _, tc := range []struct {
		name, retry string
		p0          http.HandlerFunc
		want        string
	}{
		{"present_match", "retry_on: retriable-headers\nretriable_headers: [{name: x-escalated, present_match: true}]", withHeader("x-escalated", "judge", 200), "0,1"},
		{"present_match on a missing header", "retry_on: retriable-headers\nretriable_headers: [{name: x-escalated, present_match: true}]", withHeader("x-other", "judge", 200), "0"},
		{"exact matches", "retry_on: retriable-headers\nretriable_headers: [{name: x-escalated, string_match: {exact: judge}}]", withHeader("x-escalated", "judge", 200), "0,1"},
		{"exact does not match", "retry_on: retriable-headers\nretriable_headers: [{name: x-escalated, string_match: {exact: judge}}]", withHeader("x-escalated", "judged", 200), "0"},
		{"prefix", "retry_on: retriable-headers\nretriable_headers: [{name: x-escalated, string_match: {prefix: jud}}]", withHeader("x-escalated", "judged", 200), "0,1"},
		{"any matcher of the list", "retry_on: retriable-headers\nretriable_headers: [{name: x-a, present_match: true}, {name: x-escalated, present_match: true}]", withHeader("x-escalated", "1", 200), "0,1"},
		{"invert_match", "retry_on: retriable-headers\nretriable_headers: [{name: x-ok, present_match: true, invert_match: true}]", withHeader("x-escalated", "1", 200), "0,1"},
		{"matchers without retriable-headers in retry_on", "retry_on: 5xx\nretriable_headers: [{name: x-escalated, present_match: true}]", withHeader("x-escalated", "judge", 200), "0"},
		{"x-envoy-ratelimited is never retried", "retry_on: 5xx", withHeader("x-envoy-ratelimited", "true", 503), "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _, _ := upSim(t, upSetup{parts: upParts{routes: upRoute(tc.retry)}, p0: tc.p0, p1: status200("p1")})
			h.post(`{}`, nil)
			if e := h.lastLog(); prios(e) != tc.want {
				t.Fatalf("attempts %s, want %s", prios(e), tc.want)
			}
		})
	}
	// The header can come from the upstream ext_proc, in its response
	// headers answer or, with the response body BUFFERED (held headers, §3),
	// in its response body answer: the router sees the headers after the
	// upstream filter chain (§6).
	escalate := func(req *extprocv3.ProcessingRequest) step {
		return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("x-switchyard-escalated", "invalid_json"))}))
	}
	retry := "retry_on: 5xx,retriable-headers\nretriable_headers: [{name: x-switchyard-escalated, present_match: true}]"
	for _, tc := range []struct {
		name, mode string
		h          handlers
	}{
		{"set in response headers", upstreamMode, handlers{rspHeaders: escalate}},
		{"set with a BUFFERED response body", strings.Replace(upstreamMode, "response_body_mode: NONE", "response_body_mode: BUFFERED", 1), handlers{rspBody: escalate}},
	} {
		t.Run("upstream ext_proc "+tc.name, func(t *testing.T) {
			h, _, p1, proc := upSim(t, upSetup{parts: upParts{routes: upRoute(retry), upstreamProc: tc.mode}, p0: status200("cheap"), p1: status200("strong"), proc: tc.h})
			r := h.post(`{}`, nil)
			e := h.lastLog()
			// The last attempt is escalated too (the script always says so);
			// with the retry spent its answer goes out, header and all.
			if prios(e) != "0,1" || r.body != "strong" || r.header.Get("x-switchyard-escalated") != "invalid_json" || len(p1.requests()) != 1 {
				t.Fatalf("got %q %v attempts %s", r.body, r.header, prios(e))
			}
			if st := h.env.Stats(); st["cluster.backend.upstream_rq_retry"] != 1 || st["cluster.backend.upstream_rq_retry_limit_exceeded"] != 1 || !slices.Contains(e.Flags, "URX") {
				t.Fatalf("stats %v flags %v", st, e.Flags)
			}
			_ = proc
		})
	}
}

func TestCircuitBreakerMaxRetries(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	blocking := func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte("p1"))
	}
	cb := "circuit_breakers: {thresholds: [{max_retries: 1}]}"
	h, _, _, _ := upSim(t, upSetup{parts: upParts{clusterExtra: cb}, p0: statusCode(503), p1: blocking})
	first := make(chan resp, 1)
	go func() {
		// Request 1: priority 0 fails, its retry (the cluster's only retry
		// slot) waits at priority 1.
		first <- h.post(`{}`, nil)
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("first retry never reached priority 1")
	}
	// Request 2: priority 0 fails too, but the retry budget is used up, so
	// it gets priority 0's answer without a retry.
	r2 := h.post(`{}`, nil)
	e2 := h.lastLog()
	close(release)
	r1 := <-first
	if r2.status != 503 || prios(e2) != "0" || !slices.Contains(e2.Flags, "UO") {
		t.Fatalf("second request: %d attempts %s flags %v", r2.status, prios(e2), e2.Flags)
	}
	if r1.status != 200 || r1.body != "p1" {
		t.Fatalf("first request: %d %q", r1.status, r1.body)
	}
	st := h.env.Stats()
	if st["cluster.backend.upstream_rq_retry_overflow"] != 1 || st["cluster.backend.upstream_rq_retry"] != 1 || st["cluster.backend.upstream_rq_retry_success"] != 1 {
		t.Fatalf("stats %v", st)
	}
	// The slot is free again once request 1 finished.
	h.lastLog()
	h2, _, _, _ := upSim(t, upSetup{parts: upParts{clusterExtra: cb}, p0: statusCode(503), p1: status200("p1")})
	for range 2 {
		if r := h2.post(`{}`, nil); r.status != 200 {
			t.Fatalf("sequential retries: %d", r.status)
		}
	}
	if n := h2.env.Stats()["cluster.backend.upstream_rq_retry_overflow"]; n != 0 {
		t.Fatalf("sequential retries overflowed: %d", n)
	}
	t.Run("default is 3 and only max_retries is emulated", func(t *testing.T) {
		cfg, err := Load([]byte(upYAML(upParts{})))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.clusters["backend"].maxRetries != 3 {
			t.Fatalf("default max_retries %d", cfg.clusters["backend"].maxRetries)
		}
		_, err = Load([]byte(upYAML(upParts{clusterExtra: "circuit_breakers: {thresholds: [{max_connections: 10}]}"})))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "max_connections") {
			t.Fatalf("max_connections: %v", err)
		}
	})
}

func TestSuppressEnvoyHeaders(t *testing.T) {
	for _, suppress := range []bool{false, true} {
		h, p0, _, _ := upSim(t, upSetup{parts: upParts{suppress: suppress, routes: "- match: {prefix: /}\n  route: {cluster: backend, timeout: 3s}\n"}, p0: status200("p0")})
		r := h.post(`{}`, nil)
		up := p0.requests()[0].header.Get("x-envoy-expected-rq-timeout-ms")
		down := r.header.Get("x-envoy-upstream-service-time")
		if suppress && (up != "" || down != "") || !suppress && (up != "3000" || down == "") {
			t.Fatalf("suppress=%v: upstream x-envoy-expected-rq-timeout-ms %q, downstream x-envoy-upstream-service-time %q", suppress, up, down)
		}
	}
}

func TestRouteResponseHeadersToAdd(t *testing.T) {
	direct := `- match: {prefix: /v1/}
  direct_response: {status: 503, body: {inline_string: '{"error":{"code":"no_target"}}'}}
  response_headers_to_add:
  - {header: {key: content-type, value: application/json}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  - {header: {key: x-a, value: "1"}}
  - {header: {key: x-a, value: "2"}}
  - {header: {key: x-b, value: "1"}, append: false}
  - {header: {key: x-b, value: "2"}, append: false}
  - {header: {key: x-c, value: "1"}, append_action: OVERWRITE_IF_EXISTS}
  - {header: {key: x-e, value: ""}}
- match: {prefix: /}
  route: {cluster: backend}
  response_headers_to_add: [{header: {key: x-route, value: r}, append_action: ADD_IF_ABSENT}]`
	h, _, _, _ := upSim(t, upSetup{parts: upParts{routes: direct}, p0: status200("p0")})
	r := h.post(`{}`, nil)
	if r.status != 503 || h.lastLog().ResponseCodeDetails != "direct_response" {
		t.Fatalf("status %d", r.status)
	}
	// The local reply's text/plain default only applies when no
	// content-type is set (Utility::prepareLocalReply), so there is one.
	if ct := r.header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	if a := r.header.Values("X-A"); len(a) != 2 {
		t.Errorf("x-a %q (default APPEND_IF_EXISTS_OR_ADD)", a)
	}
	if b := r.header.Values("X-B"); len(b) != 1 || b[0] != "2" {
		t.Errorf("x-b %q (append: false overwrites)", b)
	}
	if _, ok := r.header["X-C"]; ok {
		t.Error("x-c added by OVERWRITE_IF_EXISTS")
	}
	if _, ok := r.header["X-E"]; ok {
		t.Error("empty value added without keep_empty_value")
	}
	if r := h.do(http.MethodPost, "/other", `{}`, nil); r.header.Get("X-Route") != "r" || r.body != "p0" {
		t.Errorf("routed response: %q %v", r.body, r.header)
	}
	if _, err := Load([]byte(upYAML(upParts{routes: "- match: {prefix: /}\n  route: {cluster: backend}\n  response_headers_to_add: [{header: {key: x-id, value: '%REQ(x-request-id)%'}}]\n"}))); !errors.Is(err, ErrUnsupported) {
		t.Errorf("substitution formatter: %v", err)
	}
}

func TestHTTP1HeaderLimits(t *testing.T) {
	h, p0, _, _ := upSim(t, upSetup{parts: upParts{hcmExtra: "max_request_headers_kb: 1\ncommon_http_protocol_options: {max_headers_count: 5}",
		routes: "- match: {prefix: /}\n  route: {cluster: backend}\n"}, p0: status200("p0")})
	get := func(n, size int) (resp, AccessLogEntry) {
		hdr := map[string]string{}
		for i := range n {
			hdr["X-H"+string(rune('a'+i))] = "v"
		}
		if size > 0 {
			hdr["X-Big"] = strings.Repeat("b", size)
		}
		r := h.do(http.MethodGet, "/", "", hdr)
		return r, h.lastLog()
	}
	// Go's client sends Host and User-Agent: 2 + n headers.
	if r, _ := get(3, 0); r.status != 200 {
		t.Fatalf("5 headers: %d", r.status)
	}
	if r, e := get(4, 0); r.status != 431 || e.ResponseCodeDetails != "http1.too_many_headers" {
		t.Fatalf("6 headers: %d %q", r.status, e.ResponseCodeDetails)
	}
	if r, e := get(0, 1100); r.status != 431 || e.ResponseCodeDetails != "http1.headers_too_large" {
		t.Fatalf("1.1 KiB of headers: %d %q", r.status, e.ResponseCodeDetails)
	}
	if len(p0.requests()) != 1 {
		t.Fatalf("upstream saw %d requests", len(p0.requests()))
	}
	t.Run("defaults are 100 headers and 60 KiB", func(t *testing.T) {
		cfg, err := Load([]byte(upYAML(upParts{})))
		if err != nil {
			t.Fatal(err)
		}
		if hc := cfg.listener.hcm; hc.maxHeadersCount != 100 || hc.maxHeadersKB != 60 {
			t.Fatalf("defaults %d %d", hc.maxHeadersCount, hc.maxHeadersKB)
		}
	})
}

func TestListenerBufferLimitIs413(t *testing.T) {
	for _, tc := range []struct {
		size, want int
	}{{2000, 413}, {500, 200}} {
		h, p0, _, _ := upSim(t, upSetup{parts: upParts{listenerExtra: "per_connection_buffer_limit_bytes: 1024", filters: extProcYAML(bufferedMode),
			routes: "- match: {prefix: /}\n  route: {cluster: backend}\n"}, p0: status200("p0")})
		r := h.post(`{"p":"`+strings.Repeat("x", tc.size)+`"}`, nil)
		if r.status != tc.want {
			t.Fatalf("%d-byte body: %d, want %d", tc.size, r.status, tc.want)
		}
		if tc.want == 413 && (len(p0.requests()) != 0 || h.lastLog().ResponseCodeDetails != "request_payload_too_large") {
			t.Fatal("413 went upstream or has the wrong details")
		}
	}
}

func TestClusterMetadataAttribute(t *testing.T) {
	attr := "xds.cluster_metadata.filter_metadata['switchyard']['tier']"
	h, _, _, proc := upSim(t, upSetup{parts: upParts{clusterExtra: "metadata: {filter_metadata: {switchyard: {tier: fast}}}",
		upstreamProc: "request_attributes: [\"" + attr + "\", xds.cluster_name]", routes: "- match: {prefix: /}\n  route: {cluster: backend}\n"},
		p0: status200("p0")})
	h.post(`{}`, nil)
	a := proc.waitStreams(t, 1)[0].requests()[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	if a[attr].GetStringValue() != "fast" || a["xds.cluster_name"].GetStringValue() != "backend" {
		t.Fatalf("attributes %v", a)
	}
}

func TestDNSLookupFamily(t *testing.T) {
	answer := []net.IP{net.ParseIP("10.1.1.1"), net.ParseIP("fd00::1"), net.ParseIP("10.1.1.2")}
	for _, tc := range []struct {
		family string
		want   []string
	}{
		{"AUTO", []string{"[fd00::1]:443"}},
		{"V4_ONLY", []string{"10.1.1.1:443", "10.1.1.2:443"}},
		{"V6_ONLY", []string{"[fd00::1]:443"}},
		{"V4_PREFERRED", []string{"10.1.1.1:443", "10.1.1.2:443"}},
		{"ALL", []string{"10.1.1.1:443", "10.1.1.2:443", "[fd00::1]:443"}},
	} {
		t.Run(tc.family, func(t *testing.T) {
			cfg, err := Load([]byte(upYAML(upParts{clusterExtra: "dns_lookup_family: " + tc.family})))
			if err != nil {
				t.Fatal(err)
			}
			var asked []string
			e, err := New(cfg, Options{
				AddressOverrides: map[string]string{"b.example:8000": "127.0.0.1:2"},
				LookupIP: func(_ context.Context, host string) ([]net.IP, error) {
					asked = append(asked, host)
					return answer, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			var got []string
			for _, hi := range e.Hosts("backend") {
				if hi.Priority == 0 {
					got = append(got, hi.Dial)
				}
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(asked, []string{"a.example"}) {
				t.Fatalf("hosts %v (asked %v), want %v", got, asked, tc.want)
			}
			// Every address is a host with the endpoint's identity.
			if ej := e.EjectedHosts("backend"); len(ej) != len(tc.want)+1 {
				t.Fatalf("EjectedHosts keys %v", ej)
			}
		})
	}
	t.Run("no address of the family fails New", func(t *testing.T) {
		cfg, err := Load([]byte(upYAML(upParts{clusterExtra: "dns_lookup_family: V6_ONLY"})))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, Options{LookupIP: func(context.Context, string) ([]net.IP, error) { return []net.IP{net.ParseIP("10.1.1.1")}, nil }})
		if err == nil || !strings.Contains(err.Error(), "V6_ONLY") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestAcceptedWithoutEffectAndRejected(t *testing.T) {
	accepted := `access_log:
- name: envoy.access_loggers.stdout
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
    log_format:
      formatters:
      - name: envoy.formatter.req_without_query
        typed_config: {"@type": type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery}
      json_format: {path: '%REQ_WITHOUT_QUERY(:PATH)%', status: '%RESPONSE_CODE%'}
use_remote_address: true
normalize_path: true
merge_slashes: true
stream_idle_timeout: 600s`
	if _, err := Load([]byte(upYAML(upParts{hcmExtra: accepted}))); err != nil {
		t.Fatalf("accepted fields: %v", err)
	}
	for _, tc := range []struct{ name, hcm, cluster, want string }{
		{"access log filter", "access_log: [{name: x, filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 400, runtime_key: k}}}}, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}]", "", "filter"},
		{"other access logger", "access_log: [{name: x, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}, {name: other, typed_config: {\"@type\": type.googleapis.com/google.protobuf.Struct, value: {a: 1}}}]", "", "access_log[1]"},
		{"other protocol option", "common_http_protocol_options: {idle_timeout: 1s}", "", "idle_timeout"},
		{"other transport socket", "", "transport_socket: {name: envoy.transport_sockets.alts}", "envoy.transport_sockets.alts"},
		{"per-host circuit breakers", "", "circuit_breakers: {per_host_thresholds: [{max_connections: 1}]}", "per_host_thresholds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(upYAML(upParts{hcmExtra: tc.hcm, clusterExtra: tc.cluster})))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// Concurrent requests retry on several clusters at once: the priority roll
// and the back-off jitter share one generator (run with -race).
func TestConcurrentRetriesShareTheGenerator(t *testing.T) {
	// max_retries above n: Envoy's default of 3 open retries would turn
	// most of these into 503s (upstream_rq_retry_overflow).
	h, _, p1, _ := upSim(t, upSetup{parts: upParts{clusterExtra: "circuit_breakers: {thresholds: [{max_retries: 100}]}"}, p0: statusCode(503), p1: status200("p1")})
	const n = 16
	errs := make(chan string, n)
	for range n {
		go func() {
			req, err := http.NewRequest(http.MethodPost, h.url+"/", strings.NewReader(`{}`))
			if err != nil {
				errs <- err.Error()
				return
			}
			r, err := h.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				errs <- r.Status
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	if len(p1.requests()) != n {
		t.Fatalf("priority 1 served %d of %d", len(p1.requests()), n)
	}
}
