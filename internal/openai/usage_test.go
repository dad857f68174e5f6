package openai

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestParseUsage(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		in, out int64
		ok      bool
	}{
		{"chat", `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":812,"completion_tokens":64,"total_tokens":876,"prompt_tokens_details":{"cached_tokens":512},"completion_tokens_details":{"reasoning_tokens":0}}}`, 812, 64, true},
		{"completions", `{"id":"cmpl-1","object":"text_completion","choices":[{"text":" 4","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`, 5, 1, true},
		{"embeddings", `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.01,-0.2]}],"model":"embed-s","usage":{"prompt_tokens":9,"total_tokens":9}}`, 9, 0, true},
		{"responses", `{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":0},"output_tokens":33,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":153}}`, 120, 33, true},
		{"usage first", `{"usage":{"completion_tokens":2,"prompt_tokens":3},"choices":[]}`, 3, 2, true},
		{"completion tokens null", `{"usage":{"prompt_tokens":4,"completion_tokens":null}}`, 4, 0, true},
		{"integral float", `{"usage":{"prompt_tokens":12.0,"completion_tokens":1e2}}`, 12, 100, true},
		{"max count", `{"usage":{"prompt_tokens":1099511627776,"completion_tokens":0}}`, 1 << 40, 0, true},
		{"missing", `{"id":"chatcmpl-1","choices":[]}`, 0, 0, false},
		{"null", `{"usage":null}`, 0, 0, false},
		{"not an object", `{"usage":[1,2]}`, 0, 0, false},
		{"only total", `{"usage":{"total_tokens":10}}`, 0, 0, false},
		{"nested usage is not top-level", `{"data":{"usage":{"prompt_tokens":1}}}`, 0, 0, false},
		{"over the limit", `{"usage":{"prompt_tokens":1099511627777,"completion_tokens":1}}`, 0, 0, false},
		{"int64 overflow", `{"usage":{"prompt_tokens":92233720368547758070,"completion_tokens":1}}`, 0, 0, false},
		{"huge float", `{"usage":{"prompt_tokens":1,"completion_tokens":1e300}}`, 0, 0, false},
		{"negative", `{"usage":{"prompt_tokens":-5,"completion_tokens":1}}`, 0, 0, false},
		{"fractional", `{"usage":{"prompt_tokens":2.5,"completion_tokens":1}}`, 0, 0, false},
		{"string count", `{"usage":{"prompt_tokens":"12","completion_tokens":1}}`, 0, 0, false},
		{"malformed", `{"usage":{"prompt_tokens":12,`, 0, 0, false},
		{"empty", ``, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := ParseUsage([]byte(tc.body))
			if ok != tc.ok || u.InputTokens != tc.in || u.OutputTokens != tc.out || u.Estimated {
				t.Errorf("got %+v %v, want in=%d out=%d ok=%v", u, ok, tc.in, tc.out, tc.ok)
			}
		})
	}
}

func TestUsageFromEvent(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		in, out int64
		ok      bool
	}{
		{"final usage chunk", `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":57,"completion_tokens":32,"total_tokens":89}}`, 57, 32, true},
		{"usage on last content chunk", `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage" : {"prompt_tokens":3,"completion_tokens":4}}`, 3, 4, true},
		{"content chunk", `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`, 0, 0, false},
		{"content mentioning usage", `{"choices":[{"delta":{"content":"set \"usage\": {\"prompt_tokens\": 5}"}}],"usage":null}`, 0, 0, false},
		{"responses completed", `{"type":"response.completed","sequence_number":14,"response":{"id":"resp_1","status":"completed","usage":{"input_tokens":35,"output_tokens":11,"total_tokens":46}}}`, 35, 11, true},
		{"responses incomplete", `{"type":"response.incomplete","response":{"status":"incomplete","usage":{"input_tokens":35,"output_tokens":512}}}`, 35, 512, true},
		{"responses created", `{"type":"response.created","response":{"status":"in_progress","usage":null}}`, 0, 0, false},
		{"responses delta", `{"type":"response.output_text.delta","delta":"usage"}`, 0, 0, false},
		{"other event with response usage", `{"type":"response.in_progress","response":{"usage":{"input_tokens":1,"output_tokens":1}}}`, 0, 0, false},
		{"done", `[DONE]`, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := UsageFromEvent([]byte(tc.data))
			if ok != tc.ok || u.InputTokens != tc.in || u.OutputTokens != tc.out {
				t.Errorf("got %+v %v, want in=%d out=%d ok=%v", u, ok, tc.in, tc.out, tc.ok)
			}
		})
	}
}

func TestUsageFromStreams(t *testing.T) {
	for _, tc := range []struct {
		file    string
		in, out int64
	}{{"chat_stream_usage.sse", 57, 32}, {"responses_stream.sse", 35, 11}} {
		var s SSEScanner
		found := 0
		var u Usage
		s.Feed(readTestdata(t, tc.file), func(ev Event) {
			if got, ok := UsageFromEvent(ev.Data); ok {
				found++
				u = got
			}
		})
		if found != 1 || u.InputTokens != tc.in || u.OutputTokens != tc.out {
			t.Errorf("%s: %d usage events, last %+v", tc.file, found, u)
		}
	}
}

func TestIsUsageOnlyChunk(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"include_usage chunk", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`, true},
		{"no object field", `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`, true},
		{"legacy completions", `{"object":"text_completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`, true},
		{"content chunk", `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}`, false},
		{"usage on a content chunk", `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`, false},
		{"prompt filter results chunk", `{"object":"","choices":[],"prompt_filter_results":[{"prompt_index":0}]}`, false},
		{"usage null", `{"object":"chat.completion.chunk","choices":[],"usage":null}`, false},
		{"non-chunk object", `{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":1}}`, false},
		{"responses event", `{"type":"response.completed","response":{"usage":{"input_tokens":1}}}`, false},
		{"done", `[DONE]`, false},
		{"garbage", `{"choices":[],"usage":{`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsUsageOnlyChunk([]byte(tc.data)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int64
	}{
		{"empty", "", 0},
		{"one byte", "a", 1},
		{"four bytes", "abcd", 1},
		{"five bytes", "abcde", 2},
		{"english prose", strings.Repeat("The cache ", 40), 100},
		{"chinese", "发票将于三月十四日到期", 11},
		{"japanese kana", "ありがとうございます", 10},
		{"korean", "감사합니다", 5},
		{"russian", "Счёт нужно оплатить до четырнадцатого", 12}, // (32 letters × 4 + 4 spaces × 3) / 12, rounded up
		{"invalid utf-8 counts as bytes", "\xff\xfe\xfd\xfc", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EstimateTokens([]byte(tc.text)); got != tc.want {
				t.Errorf("EstimateTokens(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
	// Monotonic: appending text never lowers the estimate.
	var b []byte
	prev := int64(0)
	for _, part := range []string{"Hello", ", ", "世界", "! ", "Привет", "\xff"} {
		b = append(b, part...)
		if e := EstimateTokens(b); e < prev {
			t.Fatalf("estimate fell from %d to %d at %q", prev, e, b)
		} else {
			prev = e
		}
	}
}

func TestContentFromEvent(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"chat delta", `{"choices":[{"index":0,"delta":{"content":"Hello\nthere"},"finish_reason":null}],"usage":null}`, "Hello\nthere"},
		{"chat two choices", `{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}`, "ab"},
		{"tool call arguments", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"id\":"}}]}}]}`, `{"id":`},
		{"legacy function call", `{"choices":[{"delta":{"function_call":{"arguments":"{}"}}}]}`, `{}`},
		{"refusal and reasoning", `{"choices":[{"delta":{"reasoning_content":"think ","refusal":"no"}}]}`, "think no"},
		{"role only", `{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}`, ""},
		{"completions", `{"object":"text_completion","choices":[{"text":" world","index":0}]}`, " world"},
		{"usage chunk", `{"choices":[],"usage":{"prompt_tokens":1}}`, ""},
		{"responses text delta", `{"type":"response.output_text.delta","delta":"Die"}`, "Die"},
		{"responses args delta", `{"type":"response.function_call_arguments.delta","delta":"{\"a\""}`, `{"a"`},
		{"responses audio delta skipped", `{"type":"response.audio.delta","delta":"UklGRg=="}`, ""},
		{"responses done event", `{"type":"response.output_text.done","text":"Die Rechnung"}`, ""},
		{"done", `[DONE]`, ""},
		{"garbage", `{"choices":[{"delta":{"content":`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ContentFromEvent([]byte(tc.data), []byte("prefix:"))
			if string(got) != "prefix:"+tc.want {
				t.Errorf("got %q, want %q", got, "prefix:"+tc.want)
			}
		})
	}
}

func TestContentFromStreams(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"chat_stream_usage.sse", "Rotate the signing key in three steps:\n\n1. Publish the new public key.\n2. Wait one cache lifetime.\n3. Switch the signer — then retire the old key."},
		{"responses_stream.sse", "Die Rechnung ist am 14. März fällig."},
	} {
		var s SSEScanner
		var text []byte
		s.Feed(readTestdata(t, tc.file), func(ev Event) { text = ContentFromEvent(ev.Data, text) })
		if string(text) != tc.want {
			t.Errorf("%s: got %q", tc.file, text)
		}
	}
}

func TestForceIncludeUsage(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		changed bool
	}{
		{"adds stream_options", `{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`, true},
		{"adds to existing options", `{"stream":true,"stream_options":{"include_obfuscation":false},"messages":[]}`,
			`{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},"messages":[]}`, true},
		{"flips false in place", `{"stream": true, "stream_options": {"include_usage": false}, "messages": []}`,
			`{"stream": true, "stream_options": {"include_usage": true}, "messages": []}`, true},
		{"replaces null options", `{"stream":true,"stream_options":null,"prompt":"x"}`,
			`{"stream":true,"stream_options":{"include_usage":true},"prompt":"x"}`, true},
		{"completions prompt", `{"stream":true,"prompt":"Say hi"}`, `{"stream":true,"prompt":"Say hi","stream_options":{"include_usage":true}}`, true},
		{"trailing whitespace", "{\"stream\":true,\"prompt\":\"x\" }\n",
			"{\"stream\":true,\"prompt\":\"x\" ,\"stream_options\":{\"include_usage\":true}}\n", true},
		{"already on", `{"stream":true,"stream_options":{"include_usage":true},"messages":[]}`, "", false},
		{"not streaming", `{"stream":false,"messages":[]}`, "", false},
		{"stream absent", `{"messages":[]}`, "", false},
		{"responses api", `{"stream":true,"input":"hi","model":"m"}`, "", false},
		{"invalid json", `{"stream":true,"messages":[`, "", false},
		{"not an object", `[{"stream":true}]`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.body)
			orig := bytes.Clone(in)
			got, changed := ForceIncludeUsage(in)
			if !bytes.Equal(in, orig) {
				t.Fatalf("input modified: %s", in)
			}
			if changed != tc.changed {
				t.Fatalf("changed = %v, want %v (%s)", changed, tc.changed, got)
			}
			want := tc.want
			if !changed {
				want = tc.body
			}
			if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if changed && gjson.GetBytes(got, "stream_options.include_usage").Type != gjson.True {
				t.Errorf("include_usage not true in %s", got)
			}
		})
	}
}

func TestPrice(t *testing.T) {
	u := Usage{InputTokens: 1_500_000, OutputTokens: 250_000}
	if got := Price(u, 0.15, 0.60); got < 0.3749999 || got > 0.3750001 {
		t.Errorf("Price = %v, want 0.375", got)
	}
	if Price(Usage{}, 3, 15) != 0 {
		t.Error("zero usage has a price")
	}
}
