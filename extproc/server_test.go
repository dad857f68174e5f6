package extproc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/signals"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hiBody = `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`

type oaiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func immediate(t *testing.T, r *extprocv3.ProcessingResponse) (int, oaiError) {
	t.Helper()
	ir := r.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("want an ImmediateResponse, got %v", r)
	}
	var e oaiError
	if err := json.Unmarshal(ir.GetBody(), &e); err != nil {
		t.Fatalf("error body is not JSON: %q", ir.GetBody())
	}
	if e.Error.Code == nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("error body lacks message/type/code: %s", ir.GetBody())
	}
	if ct := setHeaders(t, ir.GetHeaders())["content-type"]; ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	return int(ir.GetStatus().GetCode()), e
}

// The must-show: headers, then a BUFFERED body for "auto" → a header
// mutation setting x-switchyard-target in raw_value plus clear_route_cache in
// the same CommonResponse (envoy-ext-proc.md §4).
func TestRouteAutoSetsTargetAndClearsRouteCache(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders(), reqBody(hiBody), respHeaders("200"))
	if len(sent) != 3 {
		t.Fatalf("sent %d responses, want 3", len(sent))
	}
	if sent[0].GetRequestHeaders() == nil {
		t.Fatalf("first response is not a headers response: %v", sent[0])
	}
	common := sent[1].GetRequestBody().GetResponse()
	if common == nil {
		t.Fatalf("second response is not a body response: %v", sent[1])
	}
	if !common.GetClearRouteCache() {
		t.Error("clear_route_cache not set")
	}
	set := setHeaders(t, common.GetHeaderMutation())
	if set[route.HeaderTarget] != "fast" {
		t.Errorf("target = %q, want fast (default target for a greeting)", set[route.HeaderTarget])
	}
	if len(set[route.HeaderDecision]) != 13 || set[route.HeaderReason] == "" || set[route.HeaderTier] != "fast" {
		t.Errorf("decision headers = %v", set)
	}
	md := sent[1].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
	if md["target"].GetStringValue() != "fast" || md["decision_id"].GetStringValue() != set[route.HeaderDecision] {
		t.Errorf("dynamic metadata = %v", md)
	}
	rh := setHeaders(t, sent[2].GetResponseHeaders().GetResponse().GetHeaderMutation())
	if rh[route.HeaderTarget] != "fast" || rh[route.HeaderTier] != "fast" || rh[route.HeaderDecision] != set[route.HeaderDecision] {
		t.Errorf("response headers = %v", rh)
	}
}

func TestSpoofedSwitchyardHeadersRemoved(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders("x-switchyard-target", "reasoning", "x-switchyard-tier", "reasoning"), reqBody(hiBody))
	removed := sent[0].GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders()
	if strings.Join(removed, ",") != "x-switchyard-target,x-switchyard-tier" {
		t.Errorf("headers phase removed %v", removed)
	}
	mut := sent[1].GetRequestBody().GetResponse().GetHeaderMutation()
	if set := setHeaders(t, mut); set[route.HeaderTarget] != "fast" {
		t.Errorf("spoofed target won: %v", set)
	}
	if len(mut.GetRemoveHeaders()) != 2 {
		t.Errorf("body phase must remove the spoofed headers too, got %v", mut.GetRemoveHeaders())
	}
}

func TestRejections(t *testing.T) {
	strict := func(c *config.Config) { c.Server.StrictJSON = true }
	tests := []struct {
		name   string
		mutate func(*config.Config)
		hdrs   []string
		body   string
		status int
		code   string
	}{
		{"invalid json strict", strict, nil, `{"model":"auto","messages":[`, 400, "invalid_json"},
		{"unknown model", nil, nil, `{"model":"gpt-9-imaginary","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found"},
		{"over body limit", func(c *config.Config) { c.Server.MaxBodyBytes = 32 }, nil, hiBody, 413, "request_too_large"},
		{"model not a string", nil, nil, `{"model":7,"messages":[]}`, 400, "invalid_json"},
		{"too deep", nil, nil, `{"model":"auto","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, 400, "json_too_deep"},
		{"too many messages", func(c *config.Config) { c.Server.Limits.MaxMessages = 1 }, nil,
			`{"model":"auto","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, 400, "too_many_messages"},
		{"non-json rejected", func(c *config.Config) { c.Server.Content.NonJSON = "reject" }, []string{"content-type", "text/plain"}, "hello", 415, "unsupported_media_type"},
		{"encoding rejected", func(c *config.Config) { c.Server.Content.Encodings = "reject" }, []string{"content-encoding", "gzip"}, "\x1f\x8b", 415, "unsupported_content_encoding"},
		{"bad gzip", nil, []string{"content-encoding", "gzip"}, "not gzip", 400, "invalid_content_encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(testRouter(t, tt.mutate), zap.NewNop(), nil)
			hdrs := chatHeaders()
			if tt.hdrs != nil {
				hdrs = reqHeaders(false, append([]string{":method", "POST", ":path", "/v1/chat/completions"}, tt.hdrs...)...)
			}
			sent := run(t, s, hdrs, reqBody(tt.body))
			if len(sent) != 2 {
				t.Fatalf("sent %d responses", len(sent))
			}
			st, e := immediate(t, sent[1])
			if st != tt.status || *e.Error.Code != tt.code {
				t.Errorf("got %d %s (%s), want %d %s", st, *e.Error.Code, e.Error.Message, tt.status, tt.code)
			}
		})
	}
}

func TestLenientInvalidJSONGoesToDefault(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders(), reqBody(`{"model":"auto","messages":[`))
	set := setHeaders(t, sent[1].GetRequestBody().GetResponse().GetHeaderMutation())
	if set[route.HeaderTarget] != "fast" || set[route.HeaderReason] != "unparsed" {
		t.Errorf("lenient mode: %v", set)
	}
}

func TestHeaderLimits(t *testing.T) {
	s := New(testRouter(t, func(c *config.Config) { c.Server.Limits.MaxHeaders = 6 }), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders("a", "1", "b", "2"))
	if st, e := immediate(t, sent[0]); st != 431 || *e.Error.Code != "too_many_headers" {
		t.Errorf("got %d %s", st, *e.Error.Code)
	}
	s = New(testRouter(t, func(c *config.Config) { c.Server.Limits.MaxHeaderBytes = 100 }), zap.NewNop(), nil)
	sent = run(t, s, chatHeaders("x-big", strings.Repeat("v", 200)))
	if st, e := immediate(t, sent[0]); st != 431 || *e.Error.Code != "headers_too_large" {
		t.Errorf("got %d %s", st, *e.Error.Code)
	}
}

func TestNoBodyRoutesInHeadersPhase(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, reqHeaders(true, ":method", "GET", ":path", "/v1/models"))
	common := sent[0].GetRequestHeaders().GetResponse()
	if !common.GetClearRouteCache() || setHeaders(t, common.GetHeaderMutation())[route.HeaderTarget] != "fast" {
		t.Errorf("GET without body: %v", common)
	}
}

func TestGzipBodyIsRead(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	gz := gzipBytes(t, `{"model":"reasoning","messages":[{"role":"user","content":"hi"}]}`)
	sent := run(t, s, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"content-type", "application/json", "content-encoding", "gzip"), reqBody(string(gz)))
	if set := setHeaders(t, sent[1].GetRequestBody().GetResponse().GetHeaderMutation()); set[route.HeaderTarget] != "reasoning" {
		t.Errorf("gzip body not decoded: %v", set)
	}
}

func TestUnknownMessageEndsStream(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	fs := newFakeStream(context.Background(), &extprocv3.ProcessingRequest{})
	err := s.Process(fs)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("err = %v, want InvalidArgument", err)
	}
}

func TestCanceledStreamEndsCleanly(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Process(newFakeStream(ctx, chatHeaders())); err != nil {
		t.Errorf("cancelled stream: %v", err)
	}
}

func TestDrainRefusesNewStreams(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	s.Drain()
	err := s.Process(newFakeStream(context.Background(), chatHeaders()))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("err = %v, want Unavailable", err)
	}
	if err := s.Wait(context.Background()); err != nil {
		t.Error(err)
	}
}

// panicPolicy stands in for a policy engine with a bug, to show a panic is
// contained at the stream boundary.
type panicPolicy struct{}

func (panicPolicy) Eval(context.Context, *policy.Input) (policy.Decision, error) { panic("boom") }
func (panicPolicy) Revision() string                                             { return "panic" }

type nopSignals struct{}

func (nopSignals) Compute(_ context.Context, _ *openai.Request, out *signals.Signals) error {
	out.Classifier = signals.SourceEmbedded
	return nil
}
func (nopSignals) Close() {}

func TestPanicRecoveredPerFailureMode(t *testing.T) {
	for _, mode := range []string{config.FailClosed, config.FailOpen} {
		t.Run(mode, func(t *testing.T) {
			cfg, _ := config.Load("")
			cfg.Server.FailureMode = mode
			snap, err := config.Compile(cfg, "test")
			if err != nil {
				t.Fatal(err)
			}
			m := telemetry.NewMetrics()
			rt, err := route.New(snap, route.Deps{Signals: nopSignals{}, Policy: panicPolicy{}, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			s := New(rt, zap.NewNop(), m)
			sent := run(t, s, chatHeaders(), reqBody(hiBody))
			if mode == config.FailClosed {
				if st, e := immediate(t, sent[1]); st != 500 || *e.Error.Code != "internal_error" {
					t.Errorf("closed: %d %s", st, *e.Error.Code)
				}
			} else if sent[1].GetRequestBody() == nil {
				t.Errorf("open: want CONTINUE, got %v", sent[1])
			}
			if got := counterValue(t, m, "switchyard_panics_recovered_total"); got != 1 {
				t.Errorf("panics counted = %v", got)
			}
		})
	}
}

func TestUpstreamRoleDetectedByAttributes(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	first := chatHeaders(route.HeaderTarget, "fast")
	first.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
		"xds.cluster_name": structpb.NewStringValue("target-fast")}}}
	sent := run(t, s, first)
	// The upstream role never removes x-switchyard-* (the router set them).
	for _, r := range sent {
		if rm := r.GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(); len(rm) > 0 {
			t.Errorf("upstream role removed %v", rm)
		}
	}
}

func counterValue(t *testing.T, m *telemetry.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, mt := range mf.GetMetric() {
				sum += mt.GetCounter().GetValue()
			}
		}
	}
	return sum
}
