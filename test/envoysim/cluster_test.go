package envoysim

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func retryRoutes(policy string) string {
	return "- name: r\n  match: {prefix: /}\n  route:\n    cluster: backend\n    retry_policy:\n" + indent(policy, 6) + "\n"
}

const prevPrio = `retry_priority:
  name: envoy.retry_priorities.previous_priorities
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
    update_frequency: 1`

func prios(log AccessLogEntry) string {
	var s []string
	for _, a := range log.Attempts {
		s = append(s, string(rune('0'+a.Priority)))
	}
	return strings.Join(s, ",")
}

type clusterCase struct {
	routes, backendExtra, upstreamProc string
	p0, p1                             http.HandlerFunc
	proc                               handlers
	modify                             func(*Options)
}

func clusterSim(t *testing.T, c clusterCase) (*harness, *procServer, *backend, *backend) {
	t.Helper()
	var proc *procServer
	if c.upstreamProc != "" {
		proc = startProc(t, c.proc.script())
	}
	p0, p1 := startBackend(t, c.p0), startBackend(t, c.p1)
	h := newSim(t, simSetup{yaml: buildYAML(cfgParts{routes: c.routes, backendExtra: c.backendExtra, upstreamProc: c.upstreamProc}), proc: proc, p0: p0, p1: p1, modify: c.modify})
	return h, proc, p0, p1
}

func Test_6_RetryPriorities(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		want         string
		status       int
	}{
		{"previous_priorities retries on priority 1", "retry_on: 5xx\nnum_retries: 1\n" + prevPrio, "0,1", 200},
		{"without it retries stay on the healthy priority 0", "retry_on: 5xx\nnum_retries: 2", "0,0,0", 503},
		{"num_retries defaults to 1", "retry_on: 5xx", "0,0", 503},
		{"retriable-status-codes 503", "retry_on: retriable-status-codes\nretriable_status_codes: [503]\n" + prevPrio, "0,1", 200},
		{"gateway-error", "retry_on: gateway-error\n" + prevPrio, "0,1", 200},
		{"not retriable", "retry_on: retriable-status-codes\nretriable_status_codes: [429]\n" + prevPrio, "0", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes(tc.policy), p0: statusCode(503), p1: status200("p1")})
			r := h.post(`{}`, nil)
			e := h.lastLog()
			if r.status != tc.status || prios(e) != tc.want {
				t.Fatalf("got %d attempts %s, want %d %s", r.status, prios(e), tc.status, tc.want)
			}
		})
	}
}

func Test_6_PerTryTimeout(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}
	t.Run("expiry retries on the next priority", func(t *testing.T) {
		h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: 5xx\nper_try_timeout: 0.05s\n" + prevPrio), p0: slow, p1: status200("p1")})
		r := h.post(`{}`, nil)
		e := h.lastLog()
		if r.status != 200 || prios(e) != "0,1" || e.Attempts[0].Failure != "per_try_timeout" {
			t.Fatalf("got %d %+v", r.status, e.Attempts)
		}
	})
	t.Run("none left is 504", func(t *testing.T) {
		h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: connect-failure\nper_try_timeout: 0.05s"), p0: slow})
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 504 || e.ResponseCodeDetails != "upstream_per_try_timeout" {
			t.Fatalf("got %d %q", r.status, e.ResponseCodeDetails)
		}
	})
	t.Run("route timeout is 504 and not retried", func(t *testing.T) {
		routes := "- match: {prefix: /}\n  route:\n    cluster: backend\n    timeout: 0.05s\n    retry_policy: {retry_on: 5xx, num_retries: 3}\n"
		h, _, _, _ := clusterSim(t, clusterCase{routes: routes, p0: slow})
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 504 || e.ResponseCodeDetails != "upstream_response_timeout" || len(e.Attempts) != 1 {
			t.Fatalf("got %d %q %d attempts", r.status, e.ResponseCodeDetails, len(e.Attempts))
		}
	})
}

func Test_6_ConnectFailureAndResetAreRetried(t *testing.T) {
	reset := func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = c.Close()
		}
	}
	t.Run("reset", func(t *testing.T) {
		h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: reset\n" + prevPrio), p0: reset, p1: status200("p1")})
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 200 || e.Attempts[0].Failure != "reset" {
			t.Fatalf("got %d %+v", r.status, e.Attempts)
		}
	})
	t.Run("connect-failure", func(t *testing.T) {
		h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: connect-failure\n" + prevPrio), p1: status200("p1"),
			modify: func(o *Options) { o.AddressOverrides["10.0.0.1:80"] = "127.0.0.1:1" }})
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 200 || e.Attempts[0].Failure != "connect_failure" {
			t.Fatalf("got %d %+v", r.status, e.Attempts)
		}
	})
	t.Run("connect failure without retry is 503", func(t *testing.T) {
		h, _, _, _ := clusterSim(t, clusterCase{modify: func(o *Options) { o.AddressOverrides["10.0.0.1:80"] = "127.0.0.1:1" }})
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 503 || e.ResponseCodeDetails != "upstream_reset_before_response_started{connection_failure}" {
			t.Fatalf("got %d %q", r.status, e.ResponseCodeDetails)
		}
	})
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func Test_6_OutlierEjectionMovesTrafficToPriority1AndBack(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var fail sync.Map
	fail.Store("on", true)
	p0 := func(w http.ResponseWriter, _ *http.Request) {
		if v, _ := fail.Load("on"); v == true {
			w.WriteHeader(503)
			return
		}
		_, _ = w.Write([]byte("p0"))
	}
	od := "outlier_detection: {consecutive_5xx: 2, base_ejection_time: 10s, interval: 1s, max_ejection_percent: 100}"
	h, _, _, _ := clusterSim(t, clusterCase{backendExtra: od, p0: p0, p1: status200("p1"), modify: func(o *Options) { o.Clock = clk.now }})
	for i := 0; i < 2; i++ {
		if r := h.post(`{}`, nil); r.status != 503 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		h.lastLog()
	}
	if n := h.env.Stats()["cluster.backend.outlier_detection.ejections_enforced_total"]; n != 1 {
		t.Fatalf("ejections_enforced_total = %d", n)
	}
	r := h.post(`{}`, nil)
	if e := h.lastLog(); r.body != "p1" || prios(e) != "1" {
		t.Fatalf("while ejected: %q attempts %s (want priority 1 without a failed try)", r.body, prios(e))
	}
	fail.Store("on", false)
	clk.add(9 * time.Second)
	if r := h.post(`{}`, nil); r.body != "p1" {
		t.Fatalf("before base_ejection_time: %q", r.body)
	}
	h.lastLog()
	clk.add(2 * time.Second)
	if r := h.post(`{}`, nil); r.body != "p0" {
		t.Fatalf("after base_ejection_time: %q", r.body)
	}
	if h.env.EjectedHosts("backend")["10.0.0.1:80"] {
		t.Fatal("priority 0 host still reported ejected")
	}
}

func Test_6_OutlierDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, od   string
		code       int
		wantEject  uint64
		wantOverfl uint64
	}{
		{"max_ejection_percent default 10% with 2 hosts never ejects", "outlier_detection: {consecutive_5xx: 2}", 503, 0, 1},
		{"always_eject_one_host overrides it", "outlier_detection: {consecutive_5xx: 2, always_eject_one_host: true}", 503, 1, 0},
		{"gateway failures not enforced by default", "outlier_detection: {consecutive_5xx: 10, consecutive_gateway_failure: 2, max_ejection_percent: 100}", 502, 0, 0},
		{"gateway failures enforced when set", "outlier_detection: {consecutive_5xx: 10, consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, max_ejection_percent: 100}", 502, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _, _ := clusterSim(t, clusterCase{backendExtra: tc.od, p0: statusCode(tc.code), p1: status200("p1")})
			for i := 0; i < 2; i++ {
				h.post(`{}`, nil)
			}
			st := h.env.Stats()
			if st["cluster.backend.outlier_detection.ejections_enforced_total"] != tc.wantEject || st["cluster.backend.outlier_detection.ejections_overflow"] != tc.wantOverfl {
				t.Fatalf("stats %v", st)
			}
		})
	}
}

const upstreamMode = `processing_mode: {request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: NONE}
request_attributes: ["xds.upstream_host_metadata", "xds.upstream_host_metadata.filter_metadata['switchyard']['model']", "xds.cluster_name", "upstream.request_attempt_count"]`

func Test_5_UpstreamExtProcNewStreamPerAttemptWithHostAttributes(t *testing.T) {
	h, proc, _, p1 := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: 5xx\n" + prevPrio), upstreamProc: upstreamMode,
		p0: statusCode(503), p1: status200("p1"), proc: handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
			model := req.GetAttributes()["envoy.filters.http.ext_proc"].GetFields()["xds.upstream_host_metadata.filter_metadata['switchyard']['model']"].GetStringValue()
			return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("x-model", model))}))
		}}})
	if r := h.post(`{"model":"x"}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	ss := proc.waitStreams(t, 2)
	for i, s := range ss {
		a := s.requests()[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
		wantModel := []string{"m-a", "m-b"}[i]
		if got := a["upstream.request_attempt_count"].GetNumberValue(); got != float64(i+1) {
			t.Errorf("attempt %d: request_attempt_count %v", i, got)
		}
		if a["xds.cluster_name"].GetStringValue() != "backend" {
			t.Errorf("cluster name %v", a["xds.cluster_name"])
		}
		want := `filter_metadata { key: "switchyard" value { fields { key: "model" value { string_value: "` + wantModel + `" } } fields { key: "provider" value { string_value: "vendor-` + string(rune('a'+i)) + `" } } } }`
		if got := a["xds.upstream_host_metadata"].GetStringValue(); got != want {
			t.Errorf("attempt %d: host metadata\n got %s\nwant %s", i, got, want)
		}
	}
	if got := p1.requests()[0].header.Get("x-model"); got != "m-b" {
		t.Fatalf("x-model on priority 1 = %q", got)
	}
}

func Test_5_UpstreamImmediateResponseIsFinalAndNotRetried(t *testing.T) {
	h, _, p0, p1 := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: 5xx\nnum_retries: 3\n" + prevPrio), upstreamProc: upstreamMode,
		proc: handlers{reqHeaders: func(*extprocv3.ProcessingRequest) step { return reply(immediate(503, "judge says no")) }}})
	r := h.post(`{}`, nil)
	e := h.lastLog()
	if r.status != 503 || r.body != "judge says no" || len(e.Attempts) != 1 || e.Attempts[0].Failure != "upstream_local_reply" {
		t.Fatalf("got %d %q %+v", r.status, r.body, e.Attempts)
	}
	if len(p0.requests())+len(p1.requests()) != 0 {
		t.Fatal("upstream called")
	}
}

func Test_5_ClearRouteCacheFromUpstreamFilterIsIgnored(t *testing.T) {
	h, _, _, _ := clusterSim(t, clusterCase{upstreamProc: upstreamMode, p0: status200("p0"),
		proc: handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
			return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("x-target", "other")), ClearRouteCache: true}))
		}}})
	if r := h.post(`{}`, nil); r.body != "p0" {
		t.Fatalf("body %q", r.body)
	}
	if h.env.StatSum("clear_route_cache_upstream_ignored") != 1 {
		t.Fatalf("stats %v", h.env.Stats())
	}
}

// Inferred (§6): a :status rewritten by the upstream ext_proc is what the
// router sees, so it is retried and counted by outlier detection.
func Test_6_UpstreamResponseHeaderRewriteTo503IsRetried(t *testing.T) {
	h, _, _, _ := clusterSim(t, clusterCase{routes: retryRoutes("retry_on: 5xx\n" + prevPrio),
		upstreamProc: upstreamMode, backendExtra: "outlier_detection: {consecutive_5xx: 1, max_ejection_percent: 100}",
		p0: status200("cheap answer"), p1: status200("strong answer"),
		proc: handlers{rspHeaders: func(req *extprocv3.ProcessingRequest) step {
			return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr(":status", "503"), setHdr("x-switchyard-escalated", "judge"))}))
		}}})
	r := h.post(`{}`, nil)
	e := h.lastLog()
	// Both attempts are rewritten to 503: the router retries once (to
	// priority 1) and returns the second 503.
	if r.status != 503 || prios(e) != "0,1" || e.Attempts[0].Status != 503 {
		t.Fatalf("got %d attempts %+v", r.status, e.Attempts)
	}
	if h.env.Stats()["cluster.backend.outlier_detection.ejections_enforced_total"] == 0 {
		t.Fatal("rewritten 503 not counted by outlier detection")
	}
}
