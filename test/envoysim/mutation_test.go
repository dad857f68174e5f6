package envoysim

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func headersMutation(hm *extprocv3.HeaderMutation) handlers {
	return handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: hm}))
	}}
}

func Test_2_ValueOnlyMutationWritesEmptyHeader(t *testing.T) {
	h, _, p0 := simple(t, bufferedMode, headersMutation(&extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: "x-value-only", Value: "lost"}},
	}}))
	if r := h.post(`{}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	hd := p0.requests()[0].header
	if v, ok := hd["X-Value-Only"]; !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("x-value-only = %q (present %v), want an empty header", v, ok)
	}
}

func Test_2_ValueAndRawValueIs500(t *testing.T) {
	h, _, p0 := simple(t, bufferedMode+"\nfailure_mode_allow: true", headersMutation(&extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: "x-both", Value: "a", RawValue: []byte("b")}},
	}}))
	if r := h.post(`{}`, nil); r.status != 500 {
		t.Fatalf("status %d, want 500 even with failure_mode_allow", r.status)
	}
	if len(p0.requests()) != 0 {
		t.Fatal("upstream called")
	}
}

func Test_2_AppendDefaultsToOverwriteAndAppendActionIsIgnored(t *testing.T) {
	h, _, p0 := simple(t, bufferedMode, headersMutation(&extprocv3.HeaderMutation{
		RemoveHeaders: []string{"x-removed-then-set"},
		SetHeaders: []*corev3.HeaderValueOption{
			setHdr("x-over", "new"),
			appendHdr("x-app", "second"),
			{Header: &corev3.HeaderValue{Key: "x-action", RawValue: []byte("new")}, AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
			setHdr("x-removed-then-set", "set"),
		},
	}))
	h.post(`{}`, map[string]string{"x-over": "old", "x-app": "first", "x-action": "old", "x-removed-then-set": "orig"})
	hd := p0.requests()[0].header
	for k, want := range map[string]string{"x-over": "new", "x-app": "first,second", "x-action": "new", "x-removed-then-set": "set"} {
		if got := strings.Join(hd.Values(k), ","); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func Test_2_DefaultMutationRules(t *testing.T) {
	h, _, p0 := simple(t, bufferedMode, headersMutation(&extprocv3.HeaderMutation{
		RemoveHeaders: []string{":path", "host"},
		SetHeaders: []*corev3.HeaderValueOption{
			setHdr(":authority", "evil.example"), setHdr("host", "evil.example"), setHdr(":method", "DELETE"),
			setHdr(":scheme", "https"), setHdr("x-envoy-retry-on", "5xx"), setHdr(":path", "/rewritten"),
			setHdr("x-fine", "1"),
		},
	}))
	if r := h.post(`{}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	up := p0.requests()[0]
	if up.path != "/rewritten" || up.method != "POST" || up.host == "evil.example" || up.header.Get("x-envoy-retry-on") != "" || up.header.Get("x-fine") != "1" {
		t.Fatalf("upstream %s %s host=%s %v", up.method, up.path, up.host, up.header)
	}
	// 5 disallowed sets + 2 disallowed removals.
	if n := h.env.StatSum("rejected_header_mutations"); n != 7 {
		t.Fatalf("rejected_header_mutations = %d, want 7", n)
	}
}

func Test_2_MutationRulesFields(t *testing.T) {
	for _, tc := range []struct {
		name, rules, key string
		wantSet          bool
		wantStatus       int
	}{
		{"allow_all_routing", "allow_all_routing: true", ":authority", true, 200},
		{"allow_envoy", "allow_envoy: true", "x-envoy-foo", true, 200},
		{"disallow_all", "disallow_all: true", "x-foo", false, 200},
		{"disallow_system", "disallow_system: true", ":path", false, 200},
		{"disallow_is_error", "disallow_all: true\n  disallow_is_error: true", "x-foo", false, 500},
		{"disallow_expression wins", "allow_expression: {regex: 'x-.*'}\n  disallow_expression: {regex: 'x-foo'}", "x-foo", false, 200},
		{"allow_expression beats disallow_all", "disallow_all: true\n  allow_expression: {regex: 'x-foo'}", "x-foo", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			val := "v.example"
			if tc.key == ":path" {
				val = "/p"
			}
			h, _, p0 := simple(t, bufferedMode+"\nmutation_rules:\n  "+tc.rules, headersMutation(mut(setHdr(tc.key, val))))
			r := h.post(`{}`, nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d", r.status)
			}
			if tc.wantStatus != 200 {
				return
			}
			up := p0.requests()[0]
			var got bool
			switch tc.key {
			case ":authority":
				got = up.host == val
			case ":path":
				got = up.path == val
			default:
				got = up.header.Get(tc.key) == val
			}
			if got != tc.wantSet {
				t.Fatalf("set=%v, want %v", got, tc.wantSet)
			}
		})
	}
}

func Test_2_ContentLengthRemovedInStreamedMode(t *testing.T) {
	h, proc, p0 := simple(t, "processing_mode: {request_body_mode: STREAMED, response_header_mode: SKIP}", handlers{
		reqHeaders: func(req *extprocv3.ProcessingRequest) step {
			return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("content-length", "999"))}))
		},
		reqBody: func(req *extprocv3.ProcessingRequest) step {
			return reply(answer(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("CHANGED-LENGTH")}}}))
		},
	})
	if r := h.post(`{"abc":1}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	reqs := proc.waitStreams(t, 1)[0].requests()
	if _, ok := headerValue(reqs[0].GetRequestHeaders().GetHeaders(), "content-length"); ok {
		t.Fatal("processor saw content-length in STREAMED mode")
	}
	up := p0.requests()[0]
	if string(up.body) != "CHANGED-LENGTH" || up.header.Get("Content-Length") != "" {
		t.Fatalf("upstream body %q content-length %q", up.body, up.header.Get("Content-Length"))
	}
}

func Test_3_BufferedBodyMutationContentLength(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setCL bool
		want  int
	}{{"mismatch is 500", false, 500}, {"content-length set in the same response", true, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, p0 := simple(t, bufferedMode, handlers{reqBody: func(req *extprocv3.ProcessingRequest) step {
				cr := &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("0123456789")}}}
				if tc.setCL {
					cr.HeaderMutation = mut(setHdr("content-length", "10"))
				}
				return reply(answer(req, cr))
			}})
			r := h.post(`{"a":1}`, nil)
			if r.status != tc.want {
				t.Fatalf("status %d", r.status)
			}
			if tc.want == 200 && string(p0.requests()[0].body) != "0123456789" {
				t.Fatalf("upstream body %q", p0.requests()[0].body)
			}
		})
	}
}

// sseUpstream writes chunks and blocks before the last one until release
// is closed, so a test can prove earlier chunks reached the client first.
func sseUpstream(release chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "data: one\n\n")
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
		}
		_, _ = io.WriteString(w, "data: two\n\ndata: [DONE]\n\n")
	}
}

func Test_3_SSEChunksReachClientBeforeProviderFinishes(t *testing.T) {
	for _, tc := range []struct{ name, mode string }{
		{"response body NONE", bufferedMode},
		{"response body STREAMED with chunk mutation", "processing_mode: {request_body_mode: BUFFERED, response_body_mode: STREAMED}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			proc := startProc(t, handlers{rspBody: func(req *extprocv3.ProcessingRequest) step {
				up := strings.ToUpper(string(req.GetResponseBody().GetBody()))
				return reply(answer(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(up)}}}))
			}}.script())
			p0 := startBackend(t, sseUpstream(release))
			h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(tc.mode)}), proc: proc, p0: p0})
			res, err := h.client.Post(h.url+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			buf := make([]byte, 64)
			n, err := res.Body.Read(buf)
			if err != nil || !strings.Contains(strings.ToLower(string(buf[:n])), "data: one") {
				t.Fatalf("first chunk %q %v", buf[:n], err)
			}
			close(release)
			rest, _ := io.ReadAll(res.Body)
			if !strings.Contains(strings.ToLower(string(rest)), "[done]") {
				t.Fatalf("rest %q", rest)
			}
			if strings.Contains(tc.mode, "STREAMED") && !strings.Contains(string(buf[:n]), "DATA: ONE") {
				t.Fatalf("chunk not mutated: %q", buf[:n])
			}
		})
	}
}
