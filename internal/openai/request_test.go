package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestParseFields(t *testing.T) {
	body := []byte(`{"model":"auto","stream":true,"max_tokens":512,"user":"u-1",
	"response_format":{"type":"json_object"},"stream_options":{"include_usage":true},
	"tools":[{"type":"function","function":{"name":"f"}}],
	"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]}]}`)
	r, err := Parse(body, ShapeChat, 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "auto" || !r.Stream || r.MaxTokens != 512 || r.User != "u-1" || r.ResponseFormat != "json_object" ||
		!r.IncludeUsage || !r.HasTools || r.MessageCount != 2 {
		t.Errorf("fields = %+v", r)
	}
	var roles, texts []string
	skipped := 0
	r.Messages(func(role string, content gjson.Result) bool {
		roles = append(roles, role)
		skipped += ContentText(content, func(s string) { texts = append(texts, s) })
		return true
	})
	if strings.Join(roles, ",") != "system,user" || strings.Join(texts, "|") != "be brief|hello" || skipped != 1 {
		t.Errorf("roles=%v texts=%v skipped=%d", roles, texts, skipped)
	}
}

func TestParseShapes(t *testing.T) {
	r, err := Parse([]byte(`{"model":"m","input":[{"role":"user","content":"a"},{"role":"user","content":"b"}],"max_output_tokens":9,"text":{"format":{"type":"json_schema"}}}`), ShapeResponses, 64)
	if err != nil || r.MessageCount != 2 || r.MaxTokens != 9 || r.ResponseFormat != "json_schema" {
		t.Errorf("responses: %+v %v", r, err)
	}
	r, err = Parse([]byte(`{"model":"m","prompt":["say hi","x"]}`), ShapeCompletions, 64)
	if err != nil || r.Prompt() != "say hi" {
		t.Errorf("completions prompt = %q %v", r.Prompt(), err)
	}
	if ShapeOf("/v1/chat/completions?x=1") != ShapeChat || ShapeOf("/v1/completions") != ShapeCompletions ||
		ShapeOf("/openai/v1/embeddings") != ShapeEmbeddings || ShapeOf("/v1/responses") != ShapeResponses || ShapeOf("/v1/models") != ShapeUnknown {
		t.Error("ShapeOf")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, ErrEmptyBody},
		{"not json", `{"model":`, ErrNotJSON},
		{"trailing garbage", `{"model":"a"} x`, ErrNotJSON},
		{"array", `[1,2]`, ErrNotObject},
		{"string", `"hi"`, ErrNotObject},
		{"model number", `{"model":5}`, ErrBadModel},
		{"messages object", `{"model":"a","messages":{}}`, ErrBadMessage},
		{"too deep", `{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, ErrTooDeep},
		{"invalid utf8", "{\"model\":\"\xff\xfe\"}", nil}, // gjson accepts bytes; the view must not panic
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), ShapeChat, 64)
			if tt.want == nil {
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDepthIgnoresBracketsInStrings(t *testing.T) {
	body := `{"model":"a","messages":[{"role":"user","content":"` + strings.Repeat("[{", 100) + `\"]"}]}`
	if _, err := Parse([]byte(body), ShapeChat, 8); err != nil {
		t.Fatalf("brackets inside strings counted as nesting: %v", err)
	}
}

func TestErrorBody(t *testing.T) {
	b := ErrorBody("bad \"thing\"\n\x01 \xff end", TypeInvalidRequest, "invalid_json")
	var v struct {
		Error struct {
			Message, Type string
			Code          *string
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	if v.Error.Message != "bad \"thing\"\n\x01 \ufffd end" || v.Error.Type != TypeInvalidRequest || v.Error.Code == nil || *v.Error.Code != "invalid_json" {
		t.Errorf("decoded %+v", v.Error)
	}
	if err := json.Unmarshal(ErrorBody("m", TypeServer, ""), &v); err != nil || v.Error.Code != nil {
		t.Errorf("empty code must be null: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","input":"x","stream":true}`,
		`{"messages":[{"content":[{"type":"text","text":"a"}]}]}`,
		`[[[[`, `{"a":"\u0000"}`, "{\"model\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameParse(t, body) // members recorded by the validator = gjson's walk
		for _, shape := range []Shape{ShapeChat, ShapeResponses, ShapeCompletions} {
			r, err := Parse(body, shape, 32)
			if err != nil {
				continue
			}
			if json.Valid(body) == false {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			r.Messages(func(_ string, c gjson.Result) bool {
				ContentText(c, func(string) {})
				return true
			})
			_ = r.Prompt()
		}
	})
}
