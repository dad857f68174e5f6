package judge

import (
	"encoding/json"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// allOn is a judge configuration with every check enabled.
func allOn(minLogprob float64) config.Judge {
	return config.Judge{JSON: true, Schema: true, MinMeanLogprob: &minLogprob, Refusal: true, Empty: true, Truncated: true}
}

func mustJudge(t testing.TB, cfg config.Judge, opts ...Option) *Judge {
	t.Helper()
	j, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chatResp builds a chat.completion body shaped like OpenAI's.
func chatResp(t testing.TB, message map[string]any, finish string, logprobs any) []byte {
	t.Helper()
	if _, ok := message["role"]; !ok {
		message["role"] = "assistant"
	}
	choice := map[string]any{"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}
	return mustJSON(t, map[string]any{
		"id": "chatcmpl-7f3a", "object": "chat.completion", "created": 1767225600, "model": "small-a-2026-01",
		"choices":            []any{choice},
		"usage":              map[string]any{"prompt_tokens": 41, "completion_tokens": 17, "total_tokens": 58},
		"system_fingerprint": "fp_0c1d",
	})
}

// chatText is a plain assistant answer that stopped normally.
func chatText(t testing.TB, content string) []byte {
	return chatResp(t, map[string]any{"content": content, "refusal": nil}, "stop", nil)
}

// chatLogprobs attaches per-token logprobs to an answer.
func chatLogprobs(t testing.TB, content string, lps ...float64) []byte {
	toks := make([]any, len(lps))
	for i, lp := range lps {
		toks[i] = map[string]any{"token": "t", "logprob": lp, "bytes": []int{116}, "top_logprobs": []any{map[string]any{"token": "t", "logprob": lp}}}
	}
	return chatResp(t, map[string]any{"content": content}, "stop", map[string]any{"content": toks, "refusal": nil})
}

// respAPI builds a responses-API object with the given output items.
func respAPI(t testing.TB, status string, output ...any) []byte {
	t.Helper()
	if output == nil {
		output = []any{}
	}
	m := map[string]any{
		"id": "resp_5c2e", "object": "response", "created_at": 1767225600, "status": status, "model": "small-a-2026-01",
		"output": output,
		"usage":  map[string]any{"input_tokens": 30, "output_tokens": 12, "total_tokens": 42},
	}
	if status == "incomplete" {
		m["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
	}
	return mustJSON(t, m)
}

func respMessage(parts ...any) map[string]any {
	return map[string]any{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": parts}
}

func outputText(text string, lps ...float64) map[string]any {
	p := map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
	if lps != nil {
		toks := make([]any, len(lps))
		for i, lp := range lps {
			toks[i] = map[string]any{"token": "x", "logprob": lp, "bytes": []int{120}, "top_logprobs": []any{}}
		}
		p["logprobs"] = toks
	}
	return p
}

// personSchema is a strict structured-output schema used across tests.
const personSchema = `{"type":"object","properties":{"name":{"type":"string","minLength":1},"age":{"type":"integer","minimum":0},
"tags":{"type":"array","items":{"type":"string","pattern":"^[a-z]+$"}}},"required":["name","age"],"additionalProperties":false}`

func jsonReq(schema string) Request {
	r := Request{WantJSON: true}
	if schema != "" {
		r.Schema = []byte(schema)
	}
	return r
}
