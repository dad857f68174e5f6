package extproc

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// FuzzRouterRequest sends random headers and bodies through the whole
// router role. Every message must get exactly one answer, no panic may be
// recovered (the recovery would hide it), and an immediate response must
// carry a JSON error body.
func FuzzRouterRequest(f *testing.F) {
	f.Add("/v1/chat/completions", "application/json", "", hiBody)
	f.Add("/v1/responses", "application/json", "", `{"model":"auto","input":"hi","stream":true}`)
	f.Add("/v1/completions", "text/plain", "", `{"prompt":["a"]}`)
	f.Add("/v1/chat/completions", "application/json", "gzip", "\x1f\x8b\x08\x00")
	f.Add("/v1/embeddings", "application/json;charset=utf-8", "br", `{"input":["x"]}`)
	f.Add("/v1/chat/completions", "application/json", "", "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe card 4111111111111111\"}]}")
	m := telemetry.NewMetrics()
	s := New(testRouter(f, nil), zap.NewNop(), m)
	f.Fuzz(func(t *testing.T, path, ctype, enc, body string) {
		hdrs := chatHeaders("content-encoding", enc, "x-switchyard-target", "spoof")
		hdrs.GetRequestHeaders().Headers.Headers[1].RawValue = []byte(path)
		hdrs.GetRequestHeaders().Headers.Headers[4].RawValue = []byte(ctype)
		fs := newFakeStream(context.Background(), hdrs, reqBody(body), respHeaders("200"))
		if err := s.Process(fs); err != nil {
			t.Fatalf("Process: %v", err)
		}
		if counterValue(t, m, "switchyard_panics_recovered_total") != 0 {
			t.Fatal("a panic was recovered")
		}
		want := 3
		for i, r := range fs.sent {
			if ir := r.GetImmediateResponse(); ir != nil {
				want = i + 1
				if !strings.HasPrefix(string(ir.GetBody()), `{"error":{`) {
					t.Fatalf("immediate response body %q", ir.GetBody())
				}
			}
			if set := r.GetRequestBody().GetResponse().GetHeaderMutation(); set != nil {
				for _, h := range set.GetSetHeaders() {
					if h.GetHeader().GetKey() == "x-switchyard-target" && string(h.GetHeader().GetRawValue()) == "spoof" {
						t.Fatal("spoofed target kept")
					}
				}
			}
		}
		if len(fs.sent) < want {
			t.Fatalf("%d answers for %d messages", len(fs.sent), want)
		}
	})
}
