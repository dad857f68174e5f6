package extproc

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/route"
)

// upstreamFirst is the first message of an upstream attempt as Envoy sends
// it: request headers with the configured attributes, the host metadata
// rendered as protobuf text in a string (§5; ai-gateway reads it the same way).
func upstreamFirst(t *testing.T, model, cluster string, kv ...string) *extprocv3.ProcessingRequest {
	t.Helper()
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		MetadataNamespace: {Fields: map[string]*structpb.Value{"model": structpb.NewStringValue(model)}},
	}}
	text, err := prototext.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.example",
		"content-type", "application/json", "authorization", "Bearer client-key",
		route.HeaderTarget, strings.TrimPrefix(cluster, clusterPrefix), route.HeaderDecision, "d123",
		headerOriginalPath, "/v1/chat/completions"}
	r := reqHeaders(false, append(base, kv...)...)
	r.Attributes = map[string]*structpb.Struct{attrsKey: {Fields: map[string]*structpb.Value{
		attrHostMetadata: structpb.NewStringValue(string(text)),
		attrClusterName:  structpb.NewStringValue(cluster),
	}}}
	return r
}

func TestUpstreamRewritesModelAuthAndLength(t *testing.T) {
	t.Setenv("VENDOR_B_API_KEY", "sk-vendor-b-secret")
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	body := `{"model":"reasoning","messages":[{"role":"user","content":"hi"}]}`
	sent := run(t, s, upstreamFirst(t, "large-b", "target-reasoning"), reqBody(body))
	set := setHeaders(t, sent[0].GetRequestHeaders().GetResponse().GetHeaderMutation())
	if set["authorization"] != "Bearer sk-vendor-b-secret" {
		t.Errorf("auth header = %q", set["authorization"])
	}
	if _, ok := set[":path"]; ok {
		t.Errorf("path rewritten without a path_prefix: %v", set)
	}
	if sent[0].GetModeOverride() != nil {
		t.Error("a non-cascade attempt asked for the response body")
	}
	common := sent[1].GetRequestBody().GetResponse()
	nb := common.GetBodyMutation().GetBody()
	if got := gjson.GetBytes(nb, "model").Str; got != "large-latest" {
		t.Errorf("model rewritten to %q, want vendor B's id large-latest", got)
	}
	if gjson.GetBytes(nb, "messages.0.content").Str != "hi" {
		t.Errorf("rest of the body changed: %s", nb)
	}
	if cl := setHeaders(t, common.GetHeaderMutation())["content-length"]; cl != itoa(len(nb)) {
		t.Errorf("content-length %q for a %d-byte body", cl, len(nb))
	}
}

func TestUpstreamPathPrefix(t *testing.T) {
	s := New(testRouter(t, func(c *config.Config) {
		p := c.Providers["vendor-a"]
		p.PathPrefix = "/openai/v1"
		c.Providers["vendor-a"] = p
	}), zap.NewNop(), nil)
	// A retry may see the path a previous attempt set; the rewrite starts
	// from the router's x-switchyard-original-path every time.
	sent := run(t, s, upstreamFirst(t, "small-a", "target-fast", ":path", "/openai/v1/chat/completions"))
	if got := setHeaders(t, sent[0].GetRequestHeaders().GetResponse().GetHeaderMutation())[":path"]; got != "" && got != "/openai/v1/chat/completions" {
		t.Errorf(":path = %q", got)
	}
	for _, tt := range []struct{ in, prefix, want string }{
		{"/v1/chat/completions", "/openai/v1", "/openai/v1/chat/completions"},
		{"/v1/embeddings?x=1", "/api/", "/api/embeddings?x=1"},
		{"/v10/x", "/p", "/v10/x"},
		{"/v1/x", "", "/v1/x"},
	} {
		if got := rewritePath(tt.in, tt.prefix); got != tt.want {
			t.Errorf("rewritePath(%q,%q) = %q, want %q", tt.in, tt.prefix, got, tt.want)
		}
	}
}

func TestUpstreamUnknownModel(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, upstreamFirst(t, "no-such-model", "target-fast"))
	if st, e := immediate(t, sent[0]); st != 502 || *e.Error.Code != "upstream_misconfigured" {
		t.Errorf("got %d %s", st, *e.Error.Code)
	}
	// Without metadata at all (a hand-written cluster): also refused, closed mode.
	r := reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions")
	r.Attributes = map[string]*structpb.Struct{attrsKey: {Fields: map[string]*structpb.Value{
		attrClusterName: structpb.NewStringValue("target-fast")}}}
	sent = run(t, s, r)
	if st, _ := immediate(t, sent[0]); st != 502 {
		t.Errorf("no metadata: status %d", st)
	}
}

func upstreamResponse(status string, body string) []*extprocv3.ProcessingRequest {
	return []*extprocv3.ProcessingRequest{respHeaders(status), {Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}}
}

const jsonModeBody = `{"model":"cascade","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"list three colours as JSON"}]}`

func answer(content string) string {
	return `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":` +
		string(appendJSON(content)) + `},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
}

func TestCascadeJudgesCheapAttempt(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		stream    string
		answer    string
		wantMode  bool
		escalated string
	}{
		{"malformed JSON escalates", "small-a", "false", answer(`{"colours": ["red", "green"`), true, "invalid_json"},
		{"valid JSON passes", "small-a", "false", answer(`{"colours": ["red", "green", "blue"]}`), true, ""},
		{"last priority never judged", "large-a", "false", answer(`not json`), false, ""},
		{"streaming never judged", "small-a", "true", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(testRouter(t, nil), zap.NewNop(), nil)
			reqs := []*extprocv3.ProcessingRequest{upstreamFirst(t, tt.model, "target-cascade", headerStream, tt.stream), reqBody(jsonModeBody)}
			if tt.wantMode {
				reqs = append(reqs, upstreamResponse("200", tt.answer)...)
			} else {
				reqs = append(reqs, respHeaders("200"))
			}
			sent := run(t, s, reqs...)
			mo := sent[0].GetModeOverride()
			if (mo != nil) != tt.wantMode {
				t.Fatalf("mode_override = %v, want set: %v", mo, tt.wantMode)
			}
			if mo != nil && (mo.GetResponseBodyMode() != filterprocv3.ProcessingMode_BUFFERED || mo.GetRequestBodyMode() != filterprocv3.ProcessingMode_BUFFERED) {
				t.Errorf("mode_override must keep the request body BUFFERED (body modes are literal): %v", mo)
			}
			if mo != nil {
				rm := strings.Join(sent[0].GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), ",")
				if !strings.Contains(rm, "authorization") || !strings.Contains(rm, "accept-encoding") {
					t.Errorf("judged attempt removes %q; want the client credential and accept-encoding", rm)
				}
			}
			rh := setHeaders(t, sent[2].GetResponseHeaders().GetResponse().GetHeaderMutation())
			if rh[route.HeaderModel] != tt.model {
				t.Errorf("x-switchyard-model = %q", rh[route.HeaderModel])
			}
			if !tt.wantMode {
				return
			}
			got := setHeaders(t, sent[3].GetResponseBody().GetResponse().GetHeaderMutation())[route.HeaderEscalated]
			if got != tt.escalated {
				t.Errorf("x-switchyard-escalated = %q, want %q", got, tt.escalated)
			}
			if sent[3].GetResponseBody().GetResponse().GetBodyMutation() != nil {
				t.Error("the judged answer's body must be left as it is")
			}
		})
	}
}

func appendJSON(s string) []byte {
	b, _ := jsonMarshal(s)
	return b
}

// With min_mean_logprob the judge asks the cheap model for logprobs itself
// and escalates an unsure answer.
func TestCascadeRequestsLogprobs(t *testing.T) {
	lp := -0.5
	s := New(testRouter(t, func(c *config.Config) {
		tg := c.Targets["cascade"]
		j := *tg.Judge
		j.MinMeanLogprob = &lp
		tg.Judge = &j
		c.Targets["cascade"] = tg
	}), zap.NewNop(), nil)
	unsure := `{"choices":[{"index":0,"message":{"role":"assistant","content":"{\"a\":1}"},"finish_reason":"stop",` +
		`"logprobs":{"content":[{"token":"{","logprob":-2.1},{"token":"a","logprob":-1.7}]}}]}`
	reqs := append([]*extprocv3.ProcessingRequest{upstreamFirst(t, "small-a", "target-cascade", headerStream, "false"), reqBody(jsonModeBody)},
		upstreamResponse("200", unsure)...)
	sent := run(t, s, reqs...)
	nb := sent[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	if !gjson.GetBytes(nb, "logprobs").Bool() || gjson.GetBytes(nb, "model").Str != "gpt-4o-mini" {
		t.Errorf("cheap request body = %s", nb)
	}
	if got := setHeaders(t, sent[3].GetResponseBody().GetResponse().GetHeaderMutation())[route.HeaderEscalated]; got != "low_logprob" {
		t.Errorf("escalated = %q, want low_logprob", got)
	}
}
