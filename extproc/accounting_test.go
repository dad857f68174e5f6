package extproc

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

func respHeadersFrom(kv ...string) *extprocv3.ProcessingRequest {
	hs := make([]*corev3.HeaderValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}}}}
}

func respBody(b string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: eos}}}
}

func metricValue(t *testing.T, m *telemetry.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range mt.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum
}

func TestAccountingNonStreaming(t *testing.T) {
	m := telemetry.NewMetrics()
	s := New(testRouter(t, func(c *config.Config) { c.Accounting.CostHeader = true }), zap.NewNop(), m)
	usage := `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}`
	sent := run(t, s, chatHeaders(), reqBody(`{"model":"reasoning","messages":[{"role":"user","content":"hi"}]}`),
		respHeadersFrom(":status", "200", "content-type", "application/json", route.HeaderModel, "large-b"),
		respBody(usage, true))
	mo := sent[2].GetModeOverride()
	if mo.GetResponseBodyMode() != filterprocv3.ProcessingMode_BUFFERED {
		t.Fatalf("non-streaming answer: mode_override = %v, want BUFFERED", mo)
	}
	br := sent[3].GetResponseBody()
	md := sent[3].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
	// large-b: $3/M in, $15/M out → 1000×3e-6 + 500×15e-6 = 0.0105; baseline is large-b too.
	if md["input_tokens"].GetNumberValue() != 1000 || md["output_tokens"].GetNumberValue() != 500 ||
		md["tokens_estimated"].GetBoolValue() || !near(md["cost_usd"].GetNumberValue(), 0.0105) || !near(md["baseline_usd"].GetNumberValue(), 0.0105) {
		t.Errorf("dynamic metadata = %v", md)
	}
	if got := setHeaders(t, br.GetResponse().GetHeaderMutation())[route.HeaderCost]; got != "0.01050000" {
		t.Errorf("cost header = %q", got)
	}
	if v := metricValue(t, m, "switchyard_tokens_total", map[string]string{"direction": "output", "model": "large-b", "estimated": "false"}); v != 500 {
		t.Errorf("output tokens metric = %v", v)
	}
	if v := metricValue(t, m, "switchyard_cost_usd_total", map[string]string{"model": "large-b"}); !near(v, 0.0105) {
		t.Errorf("cost metric = %v", v)
	}
}

func TestAccountingEstimatesWithoutUsage(t *testing.T) {
	m := telemetry.NewMetrics()
	s := New(testRouter(t, nil), zap.NewNop(), m)
	sent := run(t, s, chatHeaders(), reqBody(hiBody),
		respHeadersFrom(":status", "200", "content-type", "application/json", route.HeaderModel, "small-b"),
		respBody(`{"choices":[{"message":{"content":"`+strings.Repeat("word ", 40)+`"}}]}`, true))
	md := sent[3].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
	if !md["tokens_estimated"].GetBoolValue() || md["output_tokens"].GetNumberValue() <= 0 {
		t.Errorf("estimated usage: %v", md)
	}
	if v := metricValue(t, m, "switchyard_tokens_total", map[string]string{"estimated": "true", "direction": "output"}); v <= 0 {
		t.Error("estimated tokens not counted as estimated")
	}
}

func TestAccountingSkipsErrors(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders(), reqBody(hiBody), respHeadersFrom(":status", "503"))
	if sent[2].GetModeOverride() != nil {
		t.Error("a 503 answer must not switch the body mode")
	}
}

// sseChunk is one streamed chat.completion.chunk event.
func sseChunk(content string) string {
	return `data: {"id":"s","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"` + content + `"}}]}` + "\n\n"
}

const usageEvent = `data: {"id":"s","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37}}` + "\n\n"

func TestStreamingForcesUsageAndHidesIt(t *testing.T) {
	m := telemetry.NewMetrics()
	s := New(testRouter(t, nil), zap.NewNop(), m)
	body := `{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	stream := sseChunk("Hel") + sseChunk("lo") + usageEvent + "data: [DONE]\n\n"
	// Split the usage event across two messages, as TCP may.
	cut := strings.Index(stream, `"usage"`)
	sent := run(t, s, chatHeaders(), reqBody(body),
		respHeadersFrom(":status", "200", "content-type", "text/event-stream", route.HeaderModel, "small-a"),
		respBody(stream[:cut], false), respBody(stream[cut:], true))

	common := sent[1].GetRequestBody().GetResponse()
	nb := common.GetBodyMutation().GetBody()
	if !gjson.GetBytes(nb, "stream_options.include_usage").Bool() {
		t.Fatalf("include_usage not forced: %s", nb)
	}
	if cl := setHeaders(t, common.GetHeaderMutation())["content-length"]; cl != itoa(len(nb)) {
		t.Errorf("content-length %q for %d bytes", cl, len(nb))
	}
	if !common.GetClearRouteCache() {
		t.Error("route cache not cleared with the body rewrite")
	}
	if sent[2].GetModeOverride().GetResponseBodyMode() != filterprocv3.ProcessingMode_STREAMED {
		t.Fatalf("SSE answer: mode_override = %v, want STREAMED", sent[2].GetModeOverride())
	}
	var client strings.Builder
	for i, r := range sent[3:] {
		orig := []string{stream[:cut], stream[cut:]}[i]
		if bm := r.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			client.Write(bm.GetBody())
		} else {
			client.WriteString(orig)
		}
	}
	want := sseChunk("Hel") + sseChunk("lo") + "data: [DONE]\n\n"
	if client.String() != want {
		t.Errorf("client received\n%q\nwant\n%q", client.String(), want)
	}
	if v := metricValue(t, m, "switchyard_tokens_total", map[string]string{"direction": "output", "model": "small-a", "estimated": "false"}); v != 7 {
		t.Errorf("output tokens counted %v, want 7 (once)", v)
	}
}

func TestStreamingClientAskedForUsageKeepsIt(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	body := `{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	stream := sseChunk("a") + usageEvent + "data: [DONE]\n\n"
	sent := run(t, s, chatHeaders(), reqBody(body),
		respHeadersFrom(":status", "200", "content-type", "text/event-stream"), respBody(stream, true))
	if sent[1].GetRequestBody().GetResponse().GetBodyMutation() != nil {
		t.Error("request rewritten although the client asked for usage")
	}
	if sent[3].GetResponseBody().GetResponse().GetBodyMutation() != nil {
		t.Error("usage chunk removed although the client asked for it")
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-12 && d > -1e-12 }

// x-switchyard-model on the response names the model that answered (the
// upstream role sets it). A name the config does not know, from an
// upstream's own header or with bytes that are not UTF-8, must not become
// a metric label (unbounded label sets; prometheus panics on non-UTF-8) or
// reach the metadata: the decision's model is accounted instead.
func TestAccountingIgnoresUnknownModelHeader(t *testing.T) {
	for _, name := range []string{"made-up-model", "small-b\xff"} {
		t.Run(name, func(t *testing.T) {
			m := telemetry.NewMetrics()
			s := New(testRouter(t, nil), zap.NewNop(), m)
			sent := run(t, s, chatHeaders(), reqBody(hiBody),
				respHeadersFrom(":status", "200", "content-type", "application/json", route.HeaderModel, name),
				respBody(`{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":10,"completion_tokens":2}}`, true))
			if len(sent) != 4 || sent[3].GetImmediateResponse() != nil {
				t.Fatalf("answers: %v", sent)
			}
			decided := sent[1].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()["model"].GetStringValue()
			md := sent[3].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
			if decided == "" || md["model"].GetStringValue() != decided {
				t.Fatalf("accounted model %q, want the decision's %q", md["model"].GetStringValue(), decided)
			}
			if v := metricValue(t, m, "switchyard_tokens_total", map[string]string{"direction": "output", "model": decided}); v != 2 {
				t.Errorf("output tokens for %s = %v, want 2", decided, v)
			}
		})
	}
}
