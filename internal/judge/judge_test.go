package judge

import (
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

type judgeCase struct {
	name   string
	cfg    config.Judge
	req    Request
	status int
	body   []byte
	want   string // "" means OK
	detail string // substring the Detail must contain, if set
}

func runJudgeCases(t *testing.T, cases []judgeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := mustJudge(t, tc.cfg)
			status := tc.status
			if status == 0 {
				status = 200
			}
			v := j.Judge(tc.req, status, tc.body)
			if tc.want == "" {
				if !v.OK || v.Reason != "" {
					t.Fatalf("want OK, got %+v", v)
				}
			} else if v.OK || v.Reason != tc.want {
				t.Fatalf("want %s, got %+v", tc.want, v)
			}
			if tc.detail != "" && !strings.Contains(v.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", v.Detail, tc.detail)
			}
		})
	}
}

func TestJudgeStatusAndBody(t *testing.T) {
	on := allOn(-1)
	runJudgeCases(t, []judgeCase{
		{name: "5xx is left to Envoy", cfg: on, status: 503, body: []byte(`upstream connect error`)},
		{name: "429 is left to Envoy", cfg: on, status: 429, body: []byte(`{"error":{"message":"rate limited"}}`)},
		{name: "3xx is not judged", cfg: on, status: 302, body: nil},
		{name: "html on 200", cfg: on, body: []byte(`<html><body>Bad gateway</body></html>`), want: ReasonNotJSONBody},
		{name: "cut-off json", cfg: on, body: []byte(`{"id":"chatcmpl-1","choices":[{"message":{"content":"Hel`), want: ReasonNotJSONBody},
		{name: "empty body", cfg: on, body: nil, want: ReasonNotJSONBody},
		{name: "array body", cfg: on, body: []byte(`[{"choices":[]}]`), want: ReasonNotJSONBody},
		{name: "error object on 200", cfg: on, body: []byte(`{"error":{"message":"model overloaded","type":"server_error"}}`), want: ReasonNotJSONBody, detail: "error object"},
		{name: "unknown object", cfg: on, body: []byte(`{"id":"x","result":"ok"}`), want: ReasonNotJSONBody},
		{name: "choice without message", cfg: on, body: []byte(`{"choices":[{"index":0,"delta":{}}]}`), want: ReasonNotJSONBody},
		{name: "choice not an object", cfg: on, body: []byte(`{"choices":["hi"]}`), want: ReasonNotJSONBody},
		{name: "absurd nesting", cfg: on, body: []byte(`{"choices":[{"message":{"content":"ok","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}]}`), want: ReasonNotJSONBody},
		{name: "failed response", cfg: on, body: respAPI(t, "failed"), want: ReasonNotJSONBody, detail: "failed"},
		{name: "flags off still need a readable body", cfg: config.Judge{}, body: []byte(`not json`), want: ReasonNotJSONBody},
		{name: "flags off pass any answer", cfg: config.Judge{}, body: chatText(t, "")},
		{name: "event stream is not judged", cfg: on, body: []byte("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"), detail: "event stream"},
		{name: "embeddings are not judged", cfg: on, body: []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"e","usage":{"prompt_tokens":3,"total_tokens":3}}`), detail: "not a generation"},
		{name: "background response is not judged", cfg: on, body: respAPI(t, "queued"), detail: "background"},
		{name: "healthy chat answer", cfg: on, body: chatText(t, "The invoice total is 1,284.50 EUR, due on 14 March.")},
	})
}

func TestJudgeEmpty(t *testing.T) {
	on := config.Judge{Empty: true}
	toolCall := []any{map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": "lookup_order", "arguments": `{"id":"A-17"}`}}}
	runJudgeCases(t, []judgeCase{
		{name: "empty string", cfg: on, body: chatText(t, ""), want: ReasonEmpty},
		{name: "whitespace only", cfg: on, body: chatText(t, " \n\t "), want: ReasonEmpty},
		{name: "null content no tools", cfg: on, body: chatResp(t, map[string]any{"content": nil}, "stop", nil), want: ReasonEmpty},
		{name: "no choices", cfg: on, body: []byte(`{"id":"c","object":"chat.completion","choices":[]}`), want: ReasonEmpty, detail: "no choices"},
		{name: "null content with tool call", cfg: on, body: chatResp(t, map[string]any{"content": nil, "tool_calls": toolCall}, "tool_calls", nil)},
		{name: "legacy function_call", cfg: on, body: chatResp(t, map[string]any{"content": nil, "function_call": map[string]any{"name": "f", "arguments": "{}"}}, "function_call", nil)},
		{name: "empty tool_calls array does not count", cfg: on, body: chatResp(t, map[string]any{"content": "", "tool_calls": []any{}}, "stop", nil), want: ReasonEmpty},
		{name: "content parts", cfg: on, body: chatResp(t, map[string]any{"content": []any{map[string]any{"type": "text", "text": "Yes."}}}, "stop", nil)},
		{name: "empty content parts", cfg: on, body: chatResp(t, map[string]any{"content": []any{map[string]any{"type": "text", "text": "  "}}}, "stop", nil), want: ReasonEmpty},
		{name: "audio answer with transcript", cfg: on, body: chatResp(t, map[string]any{"content": nil, "audio": map[string]any{"id": "audio_1", "data": "UklGRg==", "transcript": "It ships Monday."}}, "stop", nil)},
		{name: "one word is not empty", cfg: on, body: chatText(t, "No.")},
		{name: "flag off", cfg: config.Judge{}, body: chatText(t, "")},
		{name: "completions text empty", cfg: on, body: []byte(`{"object":"text_completion","choices":[{"text":"","index":0,"finish_reason":"stop","logprobs":null}]}`), want: ReasonEmpty},
		{name: "completions text", cfg: on, body: []byte(`{"object":"text_completion","choices":[{"text":" 42","index":0,"finish_reason":"stop"}]}`)},
		{name: "responses without text", cfg: on, body: respAPI(t, "completed", map[string]any{"type": "reasoning", "id": "rs_1", "summary": []any{}}), want: ReasonEmpty},
		{name: "responses with function call", cfg: on, body: respAPI(t, "completed", map[string]any{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"})},
		{name: "responses with text", cfg: on, body: respAPI(t, "completed", respMessage(outputText("Shipped on Monday.")))},
		{name: "responses text split over parts", cfg: on, body: respAPI(t, "completed", respMessage(outputText(" "), outputText("Shipped.")))},
	})
}

func TestJudgeTruncated(t *testing.T) {
	on := config.Judge{Truncated: true, JSON: true}
	runJudgeCases(t, []judgeCase{
		{name: "finish length", cfg: on, body: chatResp(t, map[string]any{"content": "The three steps are: first, export the"}, "length", nil), want: ReasonTruncated},
		{name: "truncated JSON says truncated, not invalid", cfg: on, req: jsonReq(""), body: chatResp(t, map[string]any{"content": `{"items":[{"sku":"B-1"`}, "length", nil), want: ReasonTruncated},
		{name: "finish stop", cfg: on, body: chatText(t, "Done.")},
		{name: "content_filter is not truncation", cfg: on, body: chatResp(t, map[string]any{"content": "Partial"}, "content_filter", nil)},
		{name: "flag off", cfg: config.Judge{}, body: chatResp(t, map[string]any{"content": "cut"}, "length", nil)},
		{name: "completions length", cfg: on, body: []byte(`{"object":"text_completion","choices":[{"text":"Once upon","index":0,"finish_reason":"length"}]}`), want: ReasonTruncated},
		{name: "responses incomplete", cfg: on, body: respAPI(t, "incomplete", respMessage(outputText("The first"))), want: ReasonTruncated, detail: "max_output_tokens"},
		{name: "responses completed", cfg: on, body: respAPI(t, "completed", respMessage(outputText("All done.")))},
	})
}

func TestJudgeJSON(t *testing.T) {
	on := config.Judge{JSON: true}
	runJudgeCases(t, []judgeCase{
		{name: "object", cfg: on, req: jsonReq(""), body: chatText(t, `{"city":"Lyon","population":522250}`)},
		{name: "object with surrounding whitespace", cfg: on, req: jsonReq(""), body: chatText(t, "\n  {\"ok\": true}\n")},
		{name: "array", cfg: on, req: jsonReq(""), body: chatText(t, `[{"sku":"B-1"},{"sku":"B-2"}]`)},
		{name: "fenced block", cfg: on, req: jsonReq(""), body: chatText(t, "```json\n{\"ok\": true}\n```"), want: ReasonInvalidJSON, detail: "fenced"},
		{name: "prose before json", cfg: on, req: jsonReq(""), body: chatText(t, `Here is the JSON: {"ok": true}`), want: ReasonInvalidJSON},
		{name: "unterminated", cfg: on, req: jsonReq(""), body: chatText(t, `{"ok": true, "items": [1, 2`), want: ReasonInvalidJSON},
		{name: "trailing text", cfg: on, req: jsonReq(""), body: chatText(t, `{"ok": true} Let me know if you need more.`), want: ReasonInvalidJSON},
		{name: "bare string is not JSON mode output", cfg: on, req: jsonReq(""), body: chatText(t, `"yes"`), want: ReasonInvalidJSON},
		{name: "empty answer", cfg: on, req: jsonReq(""), body: chatText(t, ``), want: ReasonInvalidJSON},
		{name: "too deep", cfg: on, req: jsonReq(""), body: chatText(t, strings.Repeat("[", 600)+strings.Repeat("]", 600)), want: ReasonInvalidJSON, detail: "deep"},
		{name: "not asked", cfg: on, req: Request{}, body: chatText(t, `Sure! The answer is 4.`)},
		{name: "flag off", cfg: config.Judge{}, req: jsonReq(""), body: chatText(t, `Sure! The answer is 4.`)},
		{name: "tool call instead of JSON", cfg: on, req: jsonReq(""), body: chatResp(t, map[string]any{"content": nil, "tool_calls": []any{map[string]any{"id": "c", "type": "function", "function": map[string]any{"name": "f", "arguments": "{}"}}}}, "tool_calls", nil)},
		{name: "responses api", cfg: on, req: jsonReq(""), body: respAPI(t, "completed", respMessage(outputText(`{"a":`), outputText(`1}`)))},
		{name: "responses api invalid", cfg: on, req: jsonReq(""), body: respAPI(t, "completed", respMessage(outputText(`a: 1`))), want: ReasonInvalidJSON},
	})
}

func TestJudgeSchema(t *testing.T) {
	on := config.Judge{Schema: true}
	both := config.Judge{Schema: true, JSON: true}
	runJudgeCases(t, []judgeCase{
		{name: "valid", cfg: on, req: jsonReq(personSchema), body: chatText(t, `{"name":"Ana","age":34,"tags":["admin"]}`)},
		{name: "wrong type", cfg: on, req: jsonReq(personSchema), body: chatText(t, `{"name":"Ana","age":"thirty-four"}`), want: ReasonSchema, detail: "/properties/age/type"},
		{name: "missing required", cfg: on, req: jsonReq(personSchema), body: chatText(t, `{"name":"Ana"}`), want: ReasonSchema, detail: "required"},
		{name: "extra property", cfg: on, req: jsonReq(personSchema), body: chatText(t, `{"name":"Ana","age":3,"nickname":"A"}`), want: ReasonSchema, detail: "additionalProperties"},
		{name: "pattern", cfg: on, req: jsonReq(personSchema), body: chatText(t, `{"name":"Ana","age":3,"tags":["Top Secret Project"]}`), want: ReasonSchema, detail: "pattern"},
		{name: "prose fails schema when json check is off", cfg: on, req: jsonReq(personSchema), body: chatText(t, `Ana is 34.`), want: ReasonSchema},
		{name: "json check reports first", cfg: both, req: jsonReq(personSchema), body: chatText(t, `Ana is 34.`), want: ReasonInvalidJSON},
		{name: "no schema", cfg: on, req: jsonReq(""), body: chatText(t, `{"anything":1}`)},
		{name: "uncompilable schema passes", cfg: on, req: jsonReq(`{"type":12}`), body: chatText(t, `{"name":"Ana"}`), detail: "does not compile"},
		{name: "schema not json passes", cfg: on, req: jsonReq(`{"type":`), body: chatText(t, `{"name":"Ana"}`), detail: "not JSON"},
		{name: "external ref is not loaded", cfg: on, req: jsonReq(`{"$ref":"file:///etc/hostname"}`), body: chatText(t, `{"name":"Ana"}`), detail: "does not compile"},
		{name: "relative ref is not loaded", cfg: on, req: jsonReq(`{"$ref":"other.json"}`), body: chatText(t, `{}`), detail: "does not compile"},
		{name: "internal ref works", cfg: on, req: jsonReq(`{"$defs":{"n":{"type":"integer"}},"type":"object","properties":{"n":{"$ref":"#/$defs/n"}}}`), body: chatText(t, `{"n":"x"}`), want: ReasonSchema},
		{name: "boolean schema true", cfg: on, req: jsonReq(`true`), body: chatText(t, `{"x":1}`)},
		{name: "flag off", cfg: config.Judge{}, req: jsonReq(personSchema), body: chatText(t, `{"name":1}`)},
		{name: "responses api", cfg: on, req: jsonReq(personSchema), body: respAPI(t, "completed", respMessage(outputText(`{"name":"Bo","age":-1}`))), want: ReasonSchema, detail: "minimum"},
	})
}

func TestSchemaDetailHasNoAnswerText(t *testing.T) {
	j := mustJudge(t, config.Judge{Schema: true})
	secret := "Project Nightjar Budget"
	v := j.Judge(jsonReq(personSchema), 200, chatText(t, `{"name":"Ana","age":3,"tags":["`+secret+`"]}`))
	if v.OK || v.Reason != ReasonSchema {
		t.Fatalf("got %+v", v)
	}
	if strings.Contains(v.Detail, "Nightjar") || len(v.Detail) > 200 {
		t.Errorf("detail leaks answer text or is long: %q", v.Detail)
	}
}

func TestJudgeLogprob(t *testing.T) {
	on := config.Judge{MinMeanLogprob: ptr(-0.5)}
	asked := Request{Logprobs: true}
	runJudgeCases(t, []judgeCase{
		{name: "confident", cfg: on, req: asked, body: chatLogprobs(t, "Paris", -0.01, -0.2, -0.3)},
		{name: "unsure", cfg: on, req: asked, body: chatLogprobs(t, "Maybe Lyon", -0.9, -1.6, -0.2), want: ReasonLowLogprob, detail: "over 3 tokens"},
		{name: "at threshold passes", cfg: on, req: asked, body: chatLogprobs(t, "x", -0.5, -0.5)},
		{name: "not asked", cfg: on, req: Request{}, body: chatLogprobs(t, "Maybe", -3, -3)},
		{name: "absent in response", cfg: on, req: asked, body: chatText(t, "Paris")},
		{name: "empty logprob list", cfg: on, req: asked, body: chatLogprobs(t, "")},
		{name: "flag off", cfg: config.Judge{}, req: asked, body: chatLogprobs(t, "Maybe", -3, -3)},
		{name: "completions with null first token", cfg: on, req: asked,
			body: []byte(`{"object":"text_completion","choices":[{"text":"4","index":0,"finish_reason":"stop","logprobs":{"tokens":["2","+","2"," 4"],"token_logprobs":[null,-2.1,-1.9,-2.5],"top_logprobs":null,"text_offset":[0,1,2,3]}}]}`),
			want: ReasonLowLogprob, detail: "over 3 tokens"},
		{name: "responses api", cfg: on, req: asked, body: respAPI(t, "completed", respMessage(outputText("Paris", -0.05, -0.1)))},
		{name: "responses api unsure", cfg: on, req: asked, body: respAPI(t, "completed", respMessage(outputText("Hmm", -2, -1))), want: ReasonLowLogprob},
	})
}

func TestJudgeRefusal(t *testing.T) {
	on := config.Judge{Refusal: true, JSON: true}
	long := "Here is a migration plan for the billing service. " + strings.Repeat("Step: move one table, verify row counts, then switch reads. ", 20) +
		"I can't guarantee zero downtime, but the plan keeps the old tables readable until the end."
	runJudgeCases(t, []judgeCase{
		{name: "refusal field", cfg: on, body: chatResp(t, map[string]any{"content": nil, "refusal": "I can't provide that."}, "stop", nil), want: ReasonRefusal, detail: "field"},
		{name: "empty refusal field", cfg: on, body: chatResp(t, map[string]any{"content": "Fine.", "refusal": ""}, "stop", nil)},
		{name: "classic", cfg: on, body: chatText(t, "I'm sorry, but I can't help with that."), want: ReasonRefusal},
		{name: "typographic apostrophe", cfg: on, body: chatText(t, "I’m sorry, but I can’t assist with that request."), want: ReasonRefusal},
		{name: "as an ai", cfg: on, body: chatText(t, "As an AI, I cannot browse internal wikis."), want: ReasonRefusal},
		{name: "refusal in JSON mode is named refusal", cfg: on, req: jsonReq(""), body: chatText(t, "I cannot assist with generating that content."), want: ReasonRefusal},
		{name: "long helpful answer with a caveat", cfg: on, body: chatText(t, long)},
		{name: "can't help but", cfg: on, body: chatText(t, "I can't help but notice the loop never ends: add a break after the match.")},
		{name: "JSON answer quoting a refusal", cfg: on, req: jsonReq(""), body: chatText(t, `{"reply":"I can't help with that"}`)},
		{name: "tool call with commentary", cfg: on, body: chatResp(t, map[string]any{"content": "I can't answer without the order, looking it up.", "tool_calls": []any{map[string]any{"id": "c", "type": "function", "function": map[string]any{"name": "f", "arguments": "{}"}}}}, "tool_calls", nil)},
		{name: "flag off", cfg: config.Judge{}, body: chatText(t, "I'm sorry, but I can't help with that.")},
		{name: "responses refusal part", cfg: on, body: respAPI(t, "completed", respMessage(map[string]any{"type": "refusal", "refusal": "I can't help with that."})), want: ReasonRefusal},
		{name: "responses refusal text", cfg: on, body: respAPI(t, "completed", respMessage(outputText("I am unable to provide that information."))), want: ReasonRefusal},
	})
}

func TestJudgeOrder(t *testing.T) {
	j := mustJudge(t, allOn(-0.5))
	req := Request{WantJSON: true, Schema: []byte(personSchema), Logprobs: true}
	// Truncated beats everything; a refusal beats invalid JSON; invalid JSON
	// beats schema; schema beats logprobs.
	cases := []struct {
		body []byte
		want string
	}{
		{chatResp(t, map[string]any{"content": "I'm sorry, but I can't help"}, "length", nil), ReasonTruncated},
		{chatResp(t, map[string]any{"content": "", "refusal": "No."}, "stop", nil), ReasonRefusal},
		{chatText(t, "  "), ReasonEmpty},
		{chatLogprobs(t, `{"name":`, -3), ReasonInvalidJSON},
		{chatLogprobs(t, `{"name":"A"}`, -3), ReasonSchema},
		{chatLogprobs(t, `{"name":"A","age":1}`, -3), ReasonLowLogprob},
		{chatLogprobs(t, `{"name":"A","age":1}`, -0.1), ""},
	}
	// A schema the judge cannot use does not switch off the checks after it.
	if v := j.Judge(Request{WantJSON: true, Schema: []byte(`{"type":7}`), Logprobs: true}, 200, chatLogprobs(t, `{"a":1}`, -3)); v.Reason != ReasonLowLogprob {
		t.Errorf("uncompilable schema hid the logprob check: %+v", v)
	}
	if v := j.Judge(Request{WantJSON: true, Schema: []byte(`{"type":7}`), Logprobs: true}, 200, chatLogprobs(t, `{"a":1}`, -0.1)); !v.OK || v.Detail == "" {
		t.Errorf("uncompilable schema: want OK with a detail, got %+v", v)
	}
	for _, c := range cases {
		v := j.Judge(req, 200, c.body)
		if v.Reason != c.want || v.OK != (c.want == "") {
			t.Errorf("%s: got %+v, want %q", c.body, v, c.want)
		}
	}
}

func TestRequestFromBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"plain chat", `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`, Request{}},
		{"json_object", `{"model":"m","response_format":{"type":"json_object"},"messages":[]}`, Request{WantJSON: true}},
		{"json_schema", `{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":{"type":"object"}}}}`, Request{WantJSON: true, Schema: []byte(`{"type":"object"}`)}},
		{"text format", `{"response_format":{"type":"text"}}`, Request{}},
		{"chat logprobs", `{"messages":[],"logprobs":true,"top_logprobs":2}`, Request{Logprobs: true}},
		{"chat logprobs false", `{"messages":[],"logprobs":false}`, Request{}},
		{"completions logprobs int", `{"prompt":"2+2=","logprobs":0}`, Request{Logprobs: true}},
		{"responses schema", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"p","schema":{"type":"array"},"strict":true}}}`, Request{WantJSON: true, Schema: []byte(`{"type":"array"}`)}},
		{"responses json_object", `{"input":"hi","text":{"format":{"type":"json_object"}}}`, Request{WantJSON: true}},
		{"responses logprobs", `{"input":"hi","include":["reasoning.encrypted_content","message.output_text.logprobs"]}`, Request{Logprobs: true}},
		{"schema not an object", `{"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":"x"}}}`, Request{WantJSON: true}},
		{"invalid json", `{"response_format":{"type":"json_object"`, Request{}},
		{"not an object", `[1]`, Request{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RequestFromBody([]byte(tc.body))
			if got.WantJSON != tc.want.WantJSON || got.Logprobs != tc.want.Logprobs || string(got.Schema) != string(tc.want.Schema) {
				t.Errorf("got %+v (schema %s), want %+v (schema %s)", got, got.Schema, tc.want, tc.want.Schema)
			}
		})
	}
}

func TestRequestSchemaIsACopy(t *testing.T) {
	body := []byte(`{"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}}}`)
	r := RequestFromBody(body)
	for i := range body {
		body[i] = 'x'
	}
	if string(r.Schema) != `{"type":"object"}` {
		t.Errorf("schema changed with the body: %s", r.Schema)
	}
}

func TestNewRejectsBadCacheSize(t *testing.T) {
	if _, err := New(config.Judge{Schema: true}, WithSchemaCacheSize(0)); err == nil {
		t.Error("want an error for a zero-size schema cache")
	}
}

func ptr[T any](v T) *T { return &v }
