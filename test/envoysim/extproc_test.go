package envoysim

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// handlers answers per message kind; missing kinds get continueAll.
type handlers struct {
	reqHeaders, reqBody, rspHeaders, rspBody func(req *extprocv3.ProcessingRequest) step
}

func (h handlers) script() func(*streamRec, int, *extprocv3.ProcessingRequest) step {
	return func(_ *streamRec, _ int, req *extprocv3.ProcessingRequest) step {
		var f func(*extprocv3.ProcessingRequest) step
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			f = h.reqHeaders
		case *extprocv3.ProcessingRequest_RequestBody:
			f = h.reqBody
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			f = h.rspHeaders
		case *extprocv3.ProcessingRequest_ResponseBody:
			f = h.rspBody
		}
		if f == nil {
			return continueAll(req)
		}
		return f(req)
	}
}

func reply(r *extprocv3.ProcessingResponse) step {
	return step{send: []*extprocv3.ProcessingResponse{r}}
}

func kinds(reqs []*extprocv3.ProcessingRequest) []string {
	var out []string
	for _, r := range reqs {
		switch r.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			out = append(out, "request_headers")
		case *extprocv3.ProcessingRequest_RequestBody:
			out = append(out, "request_body")
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			out = append(out, "response_headers")
		case *extprocv3.ProcessingRequest_ResponseBody:
			out = append(out, "response_body")
		}
	}
	return out
}

const bufferedMode = "processing_mode: {request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: NONE}"

func simple(t *testing.T, procExtra string, h handlers) (*harness, *procServer, *backend) {
	t.Helper()
	proc := startProc(t, h.script())
	p0 := startBackend(t, nil)
	hs := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(procExtra)}), proc: proc, p0: p0})
	return hs, proc, p0
}

func Test_1_1_StreamOpensLazilyAtFirstBodyMessageWhenHeadersSkipped(t *testing.T) {
	h, proc, _ := simple(t, "processing_mode: {request_header_mode: SKIP, request_body_mode: BUFFERED, response_header_mode: SKIP}", handlers{})
	if r := h.post(`{"a":1}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	ss := proc.waitStreams(t, 1)
	reqs := ss[0].requests()
	if got := strings.Join(kinds(reqs), ","); got != "request_body" {
		t.Fatalf("messages %s, want request_body only", got)
	}
	if reqs[0].GetProtocolConfig().GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED {
		t.Fatalf("first message must carry protocol_config: %v", reqs[0])
	}
}

func Test_1_1_OneStreamPerRequestAndGracefulClose(t *testing.T) {
	h, proc, _ := simple(t, bufferedMode, handlers{})
	for i := 0; i < 2; i++ {
		if r := h.post(`{"a":1}`, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	ss := proc.waitStreams(t, 2)
	if len(ss) != 2 {
		t.Fatalf("streams %d, want 2", len(ss))
	}
	for _, s := range ss {
		if got := strings.Join(kinds(s.requests()), ","); got != "request_headers,request_body,response_headers" {
			t.Errorf("messages %s", got)
		}
		if !errors.Is(s.endErr, io.EOF) {
			t.Errorf("stream end %v, want io.EOF from CloseSend", s.endErr)
		}
	}
}

func Test_1_1_ServerOKCloseLetsRequestPassUnmodified(t *testing.T) {
	h, proc, p0 := simple(t, bufferedMode, handlers{reqHeaders: func(*extprocv3.ProcessingRequest) step {
		return step{end: true}
	}})
	r := h.post(`{"a":1}`, nil)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := string(p0.requests()[0].body); got != `{"a":1}` {
		t.Fatalf("upstream body %q", got)
	}
	if n := len(proc.waitStreams(t, 1)[0].requests()); n != 1 {
		t.Fatalf("processor got %d messages after closing, want 1", n)
	}
}

func Test_1_2_CommonFieldsOfEveryMessage(t *testing.T) {
	extra := bufferedMode + `
request_attributes: ["request.path", "request.method", "xds.cluster_name", "xds.upstream_host_metadata"]
response_attributes: ["response.code"]
metadata_options:
  forwarding_namespaces: {untyped: [switchyard]}
  receiving_namespaces: {untyped: [switchyard]}`
	h, proc, _ := simple(t, extra, handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		r := answer(req, &extprocv3.CommonResponse{})
		r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			"switchyard": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"tier": structpb.NewStringValue("fast")}}),
		}}
		return reply(r)
	}})
	h.post(`{"a":1}`, map[string]string{"X-Mixed-Case": "V"})
	reqs := proc.waitStreams(t, 1)[0].requests()
	if len(reqs) != 3 {
		t.Fatalf("messages %v", kinds(reqs))
	}
	for i, r := range reqs {
		if (r.GetProtocolConfig() != nil) != (i == 0) {
			t.Errorf("message %d: protocol_config present=%v", i, r.GetProtocolConfig() != nil)
		}
		if r.GetMetadataContext() == nil {
			t.Errorf("message %d: metadata_context missing", i)
		}
	}
	if got := reqs[1].GetMetadataContext().GetFilterMetadata()["switchyard"].GetFields()["tier"].GetStringValue(); got != "fast" {
		t.Errorf("forwarded metadata %q, want fast", got)
	}
	a0 := reqs[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	if a0["request.path"].GetStringValue() != "/v1/chat/completions" || a0["request.method"].GetStringValue() != "POST" || a0["xds.cluster_name"].GetStringValue() != "backend" {
		t.Errorf("request attributes %v", a0)
	}
	if _, ok := a0["xds.upstream_host_metadata"]; ok {
		t.Errorf("host metadata must be absent downstream on the request path (no host yet)")
	}
	if reqs[1].GetAttributes() != nil {
		t.Errorf("attributes must be sent once per direction")
	}
	if got := reqs[2].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()["response.code"].GetNumberValue(); got != 200 {
		t.Errorf("response.code attribute %v", got)
	}
	hm := reqs[0].GetRequestHeaders().GetHeaders()
	for _, k := range []string{":authority", ":path", ":method", ":scheme", "x-mixed-case"} {
		if _, ok := headerValue(hm, k); !ok {
			t.Errorf("header %s missing", k)
		}
	}
	for _, hv := range hm.GetHeaders() {
		if hv.GetValue() != "" || hv.GetKey() != strings.ToLower(hv.GetKey()) {
			t.Errorf("header %q must be lower case with raw_value only", hv.GetKey())
		}
	}
}

func Test_1_4_SpuriousResponseIsStatusOnError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  string
		want   int
		detail string
	}{
		{"fail closed", bufferedMode, 500, "spurious_message"},
		{"status_on_error", bufferedMode + "\nstatus_on_error: {code: 503}", 503, "spurious_message"},
		{"failure_mode_allow", bufferedMode + "\nfailure_mode_allow: true", 200, "via_upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := simple(t, tc.extra, handlers{reqHeaders: func(*extprocv3.ProcessingRequest) step {
				return reply(answer(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{}}, &extprocv3.CommonResponse{}))
			}})
			r := h.post(`{}`, nil)
			e := h.lastLog()
			if r.status != tc.want || e.ResponseCodeDetails != tc.detail {
				t.Fatalf("got %d %q, want %d %q", r.status, e.ResponseCodeDetails, tc.want, tc.detail)
			}
			if n := h.env.StatSum("spurious_msgs_received"); n != 1 {
				t.Fatalf("spurious_msgs_received = %d", n)
			}
		})
	}
}

func Test_1_4_ResponseWithoutOneofIsSpurious(t *testing.T) {
	h, _, _ := simple(t, bufferedMode, handlers{reqHeaders: func(*extprocv3.ProcessingRequest) step {
		return reply(&extprocv3.ProcessingResponse{DynamicMetadata: &structpb.Struct{}})
	}})
	if r := h.post(`{}`, nil); r.status != 500 {
		t.Fatalf("status %d", r.status)
	}
	if e := h.lastLog(); e.ResponseCodeDetails != "unhandled_message" {
		t.Fatalf("details %q", e.ResponseCodeDetails)
	}
}

func Test_1_4_ContinueAndReplaceSetsBodyAndStopsDirection(t *testing.T) {
	h, proc, p0 := simple(t, bufferedMode, handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		return reply(answer(req, &extprocv3.CommonResponse{
			Status:         extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
			HeaderMutation: mut(setHdr(":method", "PUT")),
			BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("replaced")}},
		}))
	}})
	if r := h.post(`{"original":true}`, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	up := p0.requests()[0]
	if string(up.body) != "replaced" || up.method != "PUT" {
		t.Fatalf("upstream got %s %q", up.method, up.body)
	}
	if got := strings.Join(kinds(proc.waitStreams(t, 1)[0].requests()), ","); got != "request_headers,response_headers" {
		t.Fatalf("messages %s: no request_body after CONTINUE_AND_REPLACE", got)
	}
}

func Test_1_4_ImmediateResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		want int
	}{{"403", 403, 403}, {"default 200", 0, 200}, {"below 200 becomes 200", 100, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			extra := bufferedMode + "\nmetadata_options: {receiving_namespaces: {untyped: [switchyard]}}"
			h, proc, p0 := simple(t, extra, handlers{reqBody: func(*extprocv3.ProcessingRequest) step {
				r := immediate(tc.code, `{"error":"no"}`)
				r.GetImmediateResponse().Headers = mut(setHdr("x-switchyard-decision", "deny"))
				r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
					"switchyard": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"denied": structpb.NewBoolValue(true)}}),
				}}
				return reply(r)
			}})
			r := h.post(`{}`, nil)
			e := h.lastLog()
			if r.status != tc.want || r.body != `{"error":"no"}` || r.header.Get("x-switchyard-decision") != "deny" {
				t.Fatalf("got %d %q %v", r.status, r.body, r.header)
			}
			if e.ResponseCodeDetails != "denied_by_test" || e.DynamicMetadata["switchyard"]["denied"] != true {
				t.Fatalf("log %+v", e)
			}
			if len(p0.requests()) != 0 {
				t.Fatal("upstream must not be called")
			}
			if got := strings.Join(kinds(proc.waitStreams(t, 1)[0].requests()), ","); got != "request_headers,request_body" {
				t.Fatalf("messages %s: no response_* after an immediate response", got)
			}
		})
	}
}

func Test_1_4_DynamicMetadataForUnlistedNamespaceIsDropped(t *testing.T) {
	extra := bufferedMode + "\nmetadata_options: {receiving_namespaces: {untyped: [switchyard]}}"
	h, _, _ := simple(t, extra, handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		r := answer(req, &extprocv3.CommonResponse{})
		r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			"switchyard": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"ok": structpb.NewStringValue("yes")}}),
			"other":      structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"ok": structpb.NewStringValue("no")}}),
		}}
		return reply(r)
	}})
	h.post(`{}`, nil)
	e := h.lastLog()
	if e.DynamicMetadata["switchyard"]["ok"] != "yes" {
		t.Fatalf("listed namespace missing: %v", e.DynamicMetadata)
	}
	if _, ok := e.DynamicMetadata["other"]; ok {
		t.Fatalf("unlisted namespace written: %v", e.DynamicMetadata)
	}
}

func Test_1_5_MessageTimeout(t *testing.T) {
	slow := handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		return step{delay: 300 * time.Millisecond, send: []*extprocv3.ProcessingResponse{answer(req, &extprocv3.CommonResponse{})}}
	}}
	t.Run("504", func(t *testing.T) {
		h, _, p0 := simple(t, bufferedMode+"\nmessage_timeout: 0.05s", slow)
		r := h.post(`{}`, nil)
		if e := h.lastLog(); r.status != 504 || e.ResponseCodeDetails != "ext_proc_error_per-message_timeout_exceeded" {
			t.Fatalf("got %d %q", r.status, e.ResponseCodeDetails)
		}
		if len(p0.requests()) != 0 || h.env.StatSum("message_timeouts") != 1 {
			t.Fatal("upstream called or counter missing")
		}
	})
	t.Run("default is 200ms", func(t *testing.T) {
		h, _, _ := simple(t, bufferedMode, slow)
		if r := h.post(`{}`, nil); r.status != 504 {
			t.Fatalf("status %d, want 504 after the default 200 ms", r.status)
		}
	})
	t.Run("failure_mode_allow passes through", func(t *testing.T) {
		h, _, p0 := simple(t, bufferedMode+"\nmessage_timeout: 0.05s\nfailure_mode_allow: true", slow)
		if r := h.post(`{"x":1}`, nil); r.status != 200 || string(p0.requests()[0].body) != `{"x":1}` {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("override_message_timeout within max", func(t *testing.T) {
		h, _, _ := simple(t, bufferedMode+"\nmessage_timeout: 0.05s\nmax_message_timeout: 2s", handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
			return step{send: []*extprocv3.ProcessingResponse{{OverrideMessageTimeout: durationpb.New(time.Second)}}, delay: 0}
		}, reqBody: func(req *extprocv3.ProcessingRequest) step { return continueAll(req) }})
		// The headers response never comes after the override: the new
		// timeout (1 s) must apply, not 50 ms; it then expires.
		start := time.Now()
		r := h.post(`{}`, nil)
		if r.status != 504 || time.Since(start) < 500*time.Millisecond {
			t.Fatalf("status %d after %v: override not applied", r.status, time.Since(start))
		}
		if h.env.StatSum("override_message_timeout_received") != 1 {
			t.Fatal("override not counted")
		}
	})
	t.Run("override ignored without max_message_timeout", func(t *testing.T) {
		h, _, _ := simple(t, bufferedMode+"\nmessage_timeout: 0.05s", handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
			return step{send: []*extprocv3.ProcessingResponse{{OverrideMessageTimeout: durationpb.New(time.Second)}, answer(req, &extprocv3.CommonResponse{})}, delay: 100 * time.Millisecond}
		}})
		if r := h.post(`{}`, nil); r.status != 504 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func Test_1_5_GRPCErrors(t *testing.T) {
	fail := handlers{reqHeaders: func(*extprocv3.ProcessingRequest) step { return step{end: true, endWith: grpcErr(codes.Unavailable)} }}
	for _, tc := range []struct {
		name, extra string
		want        int
	}{
		{"default 500", bufferedMode, 500},
		{"status_on_error", bufferedMode + "\nstatus_on_error: {code: 503}", 503},
		{"failure_mode_allow", bufferedMode + "\nfailure_mode_allow: true", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := simple(t, tc.extra, fail)
			r := h.post(`{}`, nil)
			e := h.lastLog()
			if r.status != tc.want {
				t.Fatalf("status %d want %d", r.status, tc.want)
			}
			if tc.want != 200 && !strings.HasPrefix(e.ResponseCodeDetails, "ext_proc_error_gRPC_error_14{") {
				t.Fatalf("details %q", e.ResponseCodeDetails)
			}
		})
	}
	t.Run("no processor listening", func(t *testing.T) {
		p0 := startBackend(t, nil)
		h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(bufferedMode)}), p0: p0})
		if r := h.post(`{}`, nil); r.status != 500 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func Test_1_4_ModeOverrideGating(t *testing.T) {
	sse := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, c := range []string{"data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"} {
			_, _ = io.WriteString(w, c)
			_ = rc.Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}
	override := &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
	inRespHeaders := handlers{rspHeaders: func(req *extprocv3.ProcessingRequest) step {
		r := answer(req, &extprocv3.CommonResponse{})
		r.ModeOverride = override
		return reply(r)
	}}
	inReqBody := handlers{reqBody: func(req *extprocv3.ProcessingRequest) step {
		r := answer(req, &extprocv3.CommonResponse{})
		r.ModeOverride = override
		return reply(r)
	}}
	for _, tc := range []struct {
		name       string
		extra      string
		h          handlers
		wantStream bool
	}{
		{"allowed in response_headers", bufferedMode + "\nallow_mode_override: true", inRespHeaders, true},
		{"allow_mode_override off", bufferedMode, inRespHeaders, false},
		{"not while waiting for a body response", bufferedMode + "\nallow_mode_override: true", inReqBody, false},
		{"not in allowed_override_modes", bufferedMode + "\nallow_mode_override: true\nallowed_override_modes: [{response_body_mode: BUFFERED}]", inRespHeaders, false},
		{"in allowed_override_modes", bufferedMode + "\nallow_mode_override: true\nallowed_override_modes: [{response_header_mode: SEND, response_body_mode: STREAMED}]", inRespHeaders, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := startProc(t, tc.h.script())
			p0 := startBackend(t, sse)
			h := newSim(t, simSetup{yaml: buildYAML(cfgParts{filters: extProcYAML(tc.extra)}), proc: proc, p0: p0})
			r := h.post(`{}`, nil)
			if r.status != 200 || !strings.Contains(r.body, "[DONE]") {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			n := 0
			for _, k := range kinds(proc.waitStreams(t, 1)[0].requests()) {
				if k == "response_body" {
					n++
				}
			}
			if (n > 0) != tc.wantStream {
				t.Fatalf("response_body messages %d, want streamed=%v", n, tc.wantStream)
			}
			if tc.wantStream && r.header.Get("Content-Length") != "" {
				t.Fatalf("content-length must be removed in STREAMED mode")
			}
		})
	}
}

func Test_1_4_ModeOverrideTakesBodyModesLiterally(t *testing.T) {
	// An override that only names the response body leaves request body
	// mode NONE: here it arrives in the request_headers response, so the
	// request body is no longer sent.
	h, proc, p0 := simple(t, bufferedMode+"\nallow_mode_override: true", handlers{reqHeaders: func(req *extprocv3.ProcessingRequest) step {
		r := answer(req, &extprocv3.CommonResponse{})
		r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE}
		return reply(r)
	}})
	if r := h.post(`{"x":1}`, nil); r.status != 200 || string(p0.requests()[0].body) != `{"x":1}` {
		t.Fatalf("status %d", r.status)
	}
	if got := strings.Join(kinds(proc.waitStreams(t, 1)[0].requests()), ","); got != "request_headers,response_headers" {
		t.Fatalf("messages %s", got)
	}
}
