package judge

import (
	"slices"
	"testing"
)

// FuzzJudge feeds arbitrary request and response bodies through a judge with
// every check on. It must never panic, and a verdict must be well formed.
func FuzzJudge(f *testing.F) {
	f.Add([]byte(`{"response_format":{"type":"json_schema","json_schema":{"schema":`+personSchema+`}},"logprobs":true}`),
		chatLogprobs(f, `{"name":"Ana","age":3}`, -0.2, -0.4))
	f.Add([]byte(`{"response_format":{"type":"json_object"}}`), chatText(f, "```json\n{}\n```"))
	f.Add([]byte(`{}`), chatText(f, "I'm sorry, but I can't help with that."))
	f.Add([]byte(`{"text":{"format":{"type":"json_schema","schema":{"type":"array"}}},"include":["message.output_text.logprobs"]}`),
		respAPI(f, "completed", respMessage(outputText("[1,2]", -1, -2))))
	f.Add([]byte(`{"prompt":"x","logprobs":1}`), []byte(`{"choices":[{"text":"y","finish_reason":"length","logprobs":{"token_logprobs":[null,-1e999]}}]}`))
	f.Add([]byte(`{"response_format":{"type":"json_schema","json_schema":{"schema":{"$ref":"#"}}}}`), chatText(f, `{}`))
	f.Add([]byte(`nope`), []byte(`{"choices":[{"message":{"content":[{"type":"text","text":"a"},"b",1]}}]}`))
	f.Add([]byte(`{}`), []byte("data: x\n\n"))
	f.Add([]byte(`{}`), []byte(`{"output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}],"status":"incomplete"}`))

	j, err := New(allOn(-0.7), WithSchemaCacheSize(16))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, reqBody, body []byte) {
		req := RequestFromBody(reqBody)
		v := j.Judge(req, 200, body)
		if v.OK && v.Reason != "" {
			t.Fatalf("OK verdict with a reason: %+v", v)
		}
		if !v.OK && !slices.Contains(Reasons, v.Reason) {
			t.Fatalf("unknown reason: %+v", v)
		}
		if len(v.Detail) > 200 {
			t.Fatalf("detail too long: %q", v.Detail)
		}
		if w := j.Judge(req, 200, body); w != v {
			t.Fatalf("verdict not deterministic: %+v then %+v", v, w)
		}
		if v := j.Judge(req, 502, body); !v.OK {
			t.Fatalf("non-2xx judged: %+v", v)
		}
	})
}
