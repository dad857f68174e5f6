package envoysim

import (
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

const targetRoutes = `- name: to-other
  match:
    prefix: /v1/
    headers:
    - name: x-target
      string_match: {exact: other}
  route: {cluster: other}
- name: by-header
  match:
    prefix: /v1/
    headers:
    - {name: x-cluster, present_match: true}
  route: {cluster_header: x-cluster}
- name: default
  match: {prefix: /v1/}
  route: {cluster: backend}
`

func routeSim(t *testing.T, extra string, h handlers) (*harness, *backend, *backend) {
	t.Helper()
	proc := startProc(t, h.script())
	p0 := startBackend(t, status200("backend"))
	other := startBackend(t, status200("other"))
	hs := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(extra), routes: targetRoutes}), proc: proc, p0: p0, other: other})
	return hs, p0, other
}

func setTarget(withMutation, clear bool) func(*extprocv3.ProcessingRequest) step {
	return func(req *extprocv3.ProcessingRequest) step {
		cr := &extprocv3.CommonResponse{ClearRouteCache: clear}
		if withMutation {
			cr.HeaderMutation = mut(setHdr("x-target", "other"))
		}
		return reply(answer(req, cr))
	}
}

func Test_4_ClearRouteCache(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		h           handlers
		want        string
		counter     string
	}{
		{"without header mutation keeps the route", bufferedMode, handlers{reqHeaders: setTarget(false, true)}, "backend", "clear_route_cache_ignored"},
		{"header mutation without clear keeps the route", bufferedMode, handlers{reqHeaders: setTarget(true, false)}, "backend", ""},
		{"header mutation with clear re-selects", bufferedMode, handlers{reqHeaders: setTarget(true, true)}, "other", ""},
		{"in a BUFFERED request_body response", bufferedMode, handlers{reqBody: setTarget(true, true)}, "other", ""},
		{"route_cache_action CLEAR", bufferedMode + "\nroute_cache_action: CLEAR", handlers{reqHeaders: setTarget(true, false)}, "other", ""},
		{"route_cache_action RETAIN", bufferedMode + "\nroute_cache_action: RETAIN", handlers{reqHeaders: setTarget(true, true)}, "backend", ""},
		{"disable_clear_route_cache", bufferedMode + "\ndisable_clear_route_cache: true", handlers{reqHeaders: setTarget(true, true)}, "backend", "clear_route_cache_disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := routeSim(t, tc.extra, tc.h)
			r := h.post(`{}`, nil)
			if r.status != 200 || r.body != tc.want {
				t.Fatalf("got %d %q, want %q", r.status, r.body, tc.want)
			}
			if tc.counter != "" && h.env.StatSum(tc.counter) != 1 {
				t.Fatalf("%s not counted: %v", tc.counter, h.env.Stats())
			}
		})
	}
}

func Test_4_RouteSelectionAndLocalReplies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string
		hdr     map[string]string
		status  int
		body    string
		details string
	}{
		{"header exact match", "/v1/x", map[string]string{"x-target": "other"}, 200, "other", "via_upstream"},
		{"default route", "/v1/x", nil, 200, "backend", "via_upstream"},
		{"cluster_header", "/v1/x", map[string]string{"x-cluster": "other"}, 200, "other", "via_upstream"},
		{"cluster_header names an unknown cluster", "/v1/x", map[string]string{"x-cluster": "nope"}, 503, "", "cluster_not_found"},
		{"no route", "/v2/x", nil, 404, "", "route_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := routeSim(t, bufferedMode, handlers{})
			r := h.do("POST", tc.path, "{}", tc.hdr)
			e := h.lastLog()
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) || e.ResponseCodeDetails != tc.details {
				t.Fatalf("got %d %q %q", r.status, r.body, e.ResponseCodeDetails)
			}
		})
	}
}

func Test_4_ClusterHeaderMissingAfterClearIs503AndNotFoundCodeIsHonoured(t *testing.T) {
	routes := "- match: {prefix: /}\n  route: {cluster_header: x-cluster}\n"
	for _, tc := range []struct {
		name, routes string
		want         int
	}{
		{"default 503", routes, 503},
		{"cluster_not_found_response_code NOT_FOUND", "- match: {prefix: /}\n  route: {cluster_header: x-cluster, cluster_not_found_response_code: NOT_FOUND}\n", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := startProc(t, nil)
			h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(bufferedMode), routes: tc.routes}), proc: proc})
			if r := h.post(`{}`, nil); r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			// The local reply goes through the ext_proc encoder path.
			reqs := proc.waitStreams(t, 1)[0].requests()
			last := reqs[len(reqs)-1]
			if v, _ := headerValue(last.GetResponseHeaders().GetHeaders(), ":status"); v == "" {
				t.Fatalf("processor did not see the local reply's response_headers: %v", kinds(reqs))
			}
		})
	}
}

func Test_4_DirectResponse(t *testing.T) {
	routes := "- match: {prefix: /v1/}\n  direct_response: {status: 503, body: {inline_string: '{\"error\":\"no target\"}'}}\n"
	proc := startProc(t, nil)
	h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(bufferedMode), routes: routes}), proc: proc})
	r := h.post(`{}`, nil)
	if r.status != 503 || r.body != `{"error":"no target"}` || h.lastLog().ResponseCodeDetails != "direct_response" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
}

func Test_4_BufferLimitIs413(t *testing.T) {
	big := `{"p":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name, routes, mode string
		want               int
	}{
		{"route per_request_buffer_limit_bytes with BUFFERED", "- match: {prefix: /}\n  route: {cluster: backend}\n  per_request_buffer_limit_bytes: 1024\n", bufferedMode, 413},
		{"no buffering filter streams through", "- match: {prefix: /}\n  route: {cluster: backend}\n  per_request_buffer_limit_bytes: 1024\n", "processing_mode: {request_body_mode: NONE}", 200},
		{"within the limit", "- match: {prefix: /}\n  route: {cluster: backend}\n  per_request_buffer_limit_bytes: 4096\n", bufferedMode, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := startProc(t, nil)
			p0 := startBackend(t, nil)
			h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(tc.mode), routes: tc.routes}), proc: proc, p0: p0})
			if r := h.post(big, nil); r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			if tc.want == 413 && len(p0.requests()) != 0 {
				t.Fatal("upstream called")
			}
		})
	}
}
