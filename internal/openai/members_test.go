package openai

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/tidwall/gjson"
)

// resetViaGJSON is Reset reading the members with gjson's ForEach and
// counting arrays, as it did before the validator recorded them: the
// oracle for the recorded path.
func resetViaGJSON(r *Request, body []byte, shape Shape, maxDepth int) error {
	*r = Request{Body: body, Shape: shape}
	if len(body) == 0 {
		return ErrEmptyBody
	}
	if err := checkJSON(body, maxDepth); err != nil {
		return err
	}
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return ErrNotObject
	}
	var rd memberReader
	root.ForEach(func(key, v gjson.Result) bool { return rd.member(r, shape, key.Str, v, -1) })
	return rd.err
}

// sameParse fails t when Reset and the gjson oracle disagree on body.
func sameParse(t *testing.T, body []byte) {
	t.Helper()
	for _, shape := range []Shape{ShapeChat, ShapeResponses, ShapeCompletions} {
		var got, want Request
		gerr := got.Reset(body, shape, 32)
		werr := resetViaGJSON(&want, body, shape, 32)
		if !errors.Is(gerr, werr) && (gerr == nil || werr == nil || gerr.Error() != werr.Error()) {
			t.Fatalf("shape %v, body %q: error %v, oracle %v", shape, body, gerr, werr)
		}
		got.Body, want.Body = nil, nil
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("shape %v, body %q:\n got %+v\nwant %+v", shape, body, got, want)
		}
	}
}

func TestRecordedMembersMatchGJSON(t *testing.T) {
	many := make([]string, 0, maxMembers+2)
	for i := range maxMembers + 2 {
		many = append(many, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	bodies := []string{
		`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`,
		` { "model" : "m" , "messages" : [ 1 , [2,3] , {"a":[4]} , [] , {} ] , "stream" : true } `,
		`{"messages":[],"model":"x"}`,
		`{"messages":[[[]]],"input":[1,2,3],"max_tokens":12,"max_completion_tokens":40}`,
		`{"max_tokens":40,"max_completion_tokens":12,"max_output_tokens":0}`,
		`{"max_tokens":123456789012345678,"max_output_tokens":1234567890123456789}`,
		`{"max_tokens":99999999999999999999,"max_completion_tokens":9007199254740993}`,
		`{"max_tokens":1e3,"max_completion_tokens":12.5,"max_output_tokens":-4}`,
		`{"max_tokens":7,"max_tokens":"9","max_tokens":3}`,
		`{"model":"m","input":"text","stream_options":{"include_usage":true},"user":"u1"}`,
		`{"model":"m","input":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		`{"tools":[{"type":"function"}],"response_format":{"type":"json_object"},"text":{"format":{"type":"json_schema"}}}`,
		`{"model":"a","model":"b"}`,
		`{"messages":[1],"messages":[2]}`,
		`{"messages":{"role":"user"}}`,
		`{"model":7}`,
		`{"mod\u0065l":"escaped-key","messages":[1,2]}`,
		`{"\"model":"odd","messages":[1]}`,
		`{"":"","messages":[{"":[]}]}`,
		`{"a":{"messages":[1,2,3]},"messages":[1]}`,
		`{"model":"m","messages":[{"content":"x"}],"nested":{"deep":[[[[1]]]]}}`,
		"{" + strings.Join(many[:maxMembers], ",") + `,"messages":[1,2]}`,
		"{" + strings.Join(many, ",") + `,"messages":[1,2,3]}`,
		`[1,2,3]`, `"str"`, `{}`, `{"a":}`, `{"messages":[1,]}`, ``, `{"model":"m"} x`,
	}
	for _, b := range bodies {
		sameParse(t, []byte(b))
	}
	// Every single-byte deletion of a rich body: many become invalid or
	// change shape; both readers must still agree.
	rich := `{"model":"gpt","stream":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"}]}],"tools":[{"a":1}],"input":["x"],"max_tokens":5}`
	for i := range rich {
		sameParse(t, []byte(rich[:i]+rich[i+1:]))
	}
}

// The recorded path must really be taken for ordinary bodies, and counts
// must come from the validator.
func TestMembersRecorded(t *testing.T) {
	var v validator
	body := []byte(`{"model":"m","messages":[{"a":[1,2]},[3],4]}`)
	if err := v.check(body, 32, true); err != nil {
		t.Fatal(err)
	}
	ms := &v.rec
	if ms.gjson || ms.n != 2 {
		t.Fatalf("recorded %d members (gjson %v), want 2", ms.n, ms.gjson)
	}
	m := ms.list[1]
	if k := string(body[m.keyStart:m.keyEnd]); k != "messages" || m.elems != 3 || string(body[m.valStart:m.valEnd]) != `[{"a":[1,2]},[3],4]` {
		t.Fatalf("member %q elems %d value %q", k, m.elems, body[m.valStart:m.valEnd])
	}
}

// Reset skips the members readsMember rejects without parsing them, so
// member must ignore every such key, whatever its value; and every key
// readsMember accepts must matter to member for some value.
func TestReadsMemberMatchesMember(t *testing.T) {
	values := []string{`"s"`, `7`, `1.5`, `true`, `[1,2]`, `{"type":"t","include_usage":true,"format":{"type":"f"}}`}
	keys := []string{"model", "stream", "max_tokens", "max_completion_tokens", "max_output_tokens", "user",
		"tools", "functions", "response_format", "text", "stream_options", "messages", "input",
		"temperature", "top_p", "n", "seed", "stop", "metadata", "Model", "model ", "prompt", "store"}
	for _, key := range keys {
		matters := false
		for _, shape := range []Shape{ShapeChat, ShapeResponses, ShapeCompletions} {
			for _, raw := range values {
				var r Request
				var rd memberReader
				ok := rd.member(&r, shape, key, gjson.Parse(raw), -1)
				if !ok || rd.err != nil || fmt.Sprintf("%#v", r) != fmt.Sprintf("%#v", Request{}) {
					matters = true
				}
			}
		}
		if matters != readsMember(key) {
			t.Errorf("key %q: member uses it %v, readsMember %v", key, matters, readsMember(key))
		}
	}
}
