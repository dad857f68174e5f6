package signals

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
)

// Differential tests: the extractor and its JSON walker must give exactly
// the results of their previous implementations (oracle_extract_test.go) on
// any body, valid or not.

// checkExtract runs both extractors over body and fails on any difference
// in the extraction or its text.
func checkExtract(t *testing.T, body []byte, shape openai.Shape, limit int) {
	t.Helper()
	req := &openai.Request{Body: body, Shape: shape}
	var got Extraction
	var want oldExtraction
	got.Extract(req, limit)
	want.Extract(req, limit)
	if !bytes.Equal(got.Text, want.Text) || got.LastUserLen != want.LastUserLen || got.SystemEnd != want.SystemEnd ||
		got.Messages != want.Messages || got.SystemMessages != want.SystemMessages ||
		got.PromptChars != want.PromptChars || got.PromptBytes != want.PromptBytes ||
		got.EstTokens != want.EstTokens || got.SkippedParts != want.SkippedParts || got.Truncated != want.Truncated {
		t.Fatalf("Extract(%q, shape %d, limit %d)\n got %q %+v\nwant %q %+v", clip(string(body), 300), shape, limit,
			clip(string(got.Text), 200), extractCounts(got.LastUserLen, got.SystemEnd, got.Messages, got.SystemMessages,
				got.PromptChars, got.PromptBytes, got.EstTokens, got.SkippedParts, got.Truncated),
			clip(string(want.Text), 200), extractCounts(want.LastUserLen, want.SystemEnd, want.Messages, want.SystemMessages,
				want.PromptChars, want.PromptBytes, want.EstTokens, want.SkippedParts, want.Truncated))
	}
}

func extractCounts(vals ...any) []any { return vals }

// checkWalk compares the walker's building blocks on the string s.
func checkWalk(t *testing.T, s string, limit int) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			if got, want := skipString(s, i), oldSkipString(s, i); got != want {
				t.Fatalf("skipString(%q, %d) = %d, want %d", clip(s, 200), i, got, want)
			}
		}
		if got, want := skipValue(s, i), oldSkipValue(s, i); got != want {
			t.Fatalf("skipValue(%q, %d) = %d, want %d", clip(s, 200), i, got, want)
		}
	}
	if got, want := runeCount(s), oldRuneCount(s); got != want {
		t.Fatalf("runeCount(%q) = %d, want %d", clip(s, 200), got, want)
	}
	for _, lim := range []int{0, 1, 2, 3, 5, 8, 31, limit, len(s), 1 << 30} {
		if lim < 0 {
			continue
		}
		g, gb, gr := appendUnescaped([]byte("pre"), s, lim)
		w, wb, wr := oldAppendUnescaped([]byte("pre"), s, lim)
		if !bytes.Equal(g, w) || gb != wb || gr != wr {
			t.Fatalf("appendUnescaped(%q, %d) = %q %d %d, want %q %d %d", clip(s, 200), lim, clip(string(g), 200), gb, gr,
				clip(string(w), 200), wb, wr)
		}
	}
}

// extractOracleStrings are JSON string contents (between the quotes) with
// the things the scanners care about: escapes of every kind, \u surrogate
// pairs whole, split, lone and malformed, escaped quotes and backslash
// runs, control bytes, invalid UTF-8 and multi-byte text at word edges.
var extractOracleStrings = []string{
	``, `a`, `hello world`, `\n`, `\\`, `\"`, `\\\"`, `\\\\"`, `a\"b\\"c`, `\/`, `\b\f\n\r\t`, `\x`, `\`, `\u`, `\u00`,
	`\u00e9`, `\u00E9t\u00e9`, `\ud83d\ude00`, `\ud83d`, `\ud83dx`, `\ude00`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`,
	`\uzzzz`, `\u12`, `c\u006fntent`, "tab\there", "ctl\x01\x1f", "nul\x00byte", "é€😀", "\xff\xfe", "\xe2\x82",
	"\xc3", "\x80\x80abc", strings.Repeat("plain text ", 40), strings.Repeat(`a\"`, 30), strings.Repeat(`\\`, 17),
	strings.Repeat("é", 33), strings.Repeat("x", 7) + `\"` + strings.Repeat("y", 9), strings.Repeat(`\u00e9`, 12),
	strings.Repeat("0123456789abcdef", 300) + `\n` + strings.Repeat("€", 500),
}

// extractOracleBodies are request bodies of every shape the extractor reads,
// well-formed and not.
func extractOracleBodies() []string {
	var bodies []string
	for _, s := range extractOracleStrings {
		q := `"` + s + `"`
		bodies = append(bodies,
			`{"messages":[{"role":"system","content":`+q+`},{"role":"user","content":`+q+`}]}`,
			`{"messages":[{"role":"user","content":[{"type":"text","text":`+q+`},{"type":"image_url","image_url":{"url":`+q+`}},`+q+`,{"text":`+q+`,"type":"input_text"}]}]}`,
			`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":`+q+`,"function":{"name":"f","arguments":`+q+`}}]},{"role":"tool","content":`+q+`},{"role":`+q+`,"refusal":`+q+`}]}`,
			`{"model":`+q+`,"prompt":[`+q+`,[1,2,3],`+q+`]}`,
			`{"input":`+q+`,"instructions":`+q+`}`,
			`{"input":[`+q+`,{"role":"user","content":`+q+`},{"type":"function_call_output","output":`+q+`}]}`,
			`{ "messages" : [ { "role" : "user" , "content" : `+q+` } , { "role":"developer","content":`+q+`} ] }`,
		)
	}
	bodies = append(bodies,
		`{"messages":[{"r\u006fle":"user","c\u006fntent":"hidden","content":"shown"}]}`,
		`{"messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]}`,
		`{"prompt":[[1,2],[3]]}`, `{"prompt":[1,2,3]}`, `{"input":[[1,2]]}`, `{"messages":{}}`, `{"messages":"x"}`,
		`{"messages":[1,true,null,"s",[],{}]}`, `[]`, `{`, `"`, `{"messages":[{"role":"user","content":"unterminated`,
		`{"messages":[{"role":"user","content":"a\"}]}`, `{"messages":[{"role":"user","content":[{"type":"text","text":"a"}`,
		`{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]} trailing`,
		`{"messages":[{"role":"user" "content":"a"}]}`, `{"messages":[{"role":"user",,"content":"a"}]}`,
		`{"a":{"b":[{"c":"]}\"{["}]},"messages":[{"role":"user","content":"after nested"}]}`,
	)
	return bodies
}

var extractOracleLimits = []int{0, 1, 2, 7, 16, 64, 1000, config.DefaultMaxClassifierChars}

func TestExtractMatchesOracle(t *testing.T) {
	t.Run("strings", func(t *testing.T) {
		for _, s := range extractOracleStrings {
			checkWalk(t, `"`+s+`"`, 5)
			checkWalk(t, `"`+s, 5) // unterminated
			checkWalk(t, `["`+s+`",{"k":"`+s+`"}]`, 5)
		}
	})
	t.Run("bodies", func(t *testing.T) {
		for _, body := range extractOracleBodies() {
			for sh := range openai.Shape(5) {
				for _, lim := range extractOracleLimits {
					checkExtract(t, []byte(body), sh, lim)
				}
			}
		}
	})
	t.Run("bench bodies", func(t *testing.T) {
		for _, bb := range benchBodies {
			body, err := os.ReadFile(bb.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, lim := range extractOracleLimits {
				checkExtract(t, body, openai.ShapeChat, lim)
				checkExtract(t, body, openai.ShapeUnknown, lim)
			}
			checkWalk(t, string(body), 100)
		}
	})
	t.Run("truncated at every byte", func(t *testing.T) {
		bodies := []string{chatBody(1500),
			`{"messages":[{"role":"user","content":[{"type":"text","text":"a\u00e9\ud83d\ude00\"b\\"},{"type":"image_url"}]},{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"x\":1}"}}]}]}`,
			`{"input":[{"role":"user","content":"q\n"},{"type":"function_call_output","output":"o\t"}],"instructions":"sys\/"}`,
			`{"prompt":["p1\u0041",[1,2],"p2"]}`,
		}
		for _, body := range bodies {
			for n := 0; n <= len(body); n++ {
				for _, sh := range []openai.Shape{openai.ShapeUnknown, openai.ShapeChat, openai.ShapeResponses, openai.ShapeCompletions} {
					checkExtract(t, []byte(body[:n]), sh, 50)
					checkExtract(t, []byte(body[:n]), sh, 0)
				}
				checkWalk(t, body[:n], 10)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		pieces := []string{`"`, `\`, `\"`, `\\`, `\u`, `\ud83d`, `\ude00`, `00e9`, `{`, `}`, `[`, `]`, `:`, `,`, ` `, "\n",
			`"role"`, `"user"`, `"system"`, `"content"`, `"type"`, `"text"`, `"messages"`, `"input"`, `"prompt"`,
			`a`, `word `, `é`, `😀`, "\xff", "\x01", `1`, `null`, strings.Repeat("z", 20)}
		for i := range 3000 {
			var b strings.Builder
			for b.Len() < i%400 {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			body := b.String()
			checkExtract(t, []byte(body), openai.Shape(rng.IntN(5)), rng.IntN(300))
			checkWalk(t, body, rng.IntN(50))
		}
	})
}

func FuzzDifferentialExtract(f *testing.F) {
	for _, body := range extractOracleBodies()[:60] {
		f.Add([]byte(body), uint8(1), uint16(40))
	}
	for _, bb := range benchBodies[:2] {
		body, err := os.ReadFile(bb.file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, uint8(0), uint16(1000))
	}
	f.Fuzz(func(t *testing.T, body []byte, shape uint8, limit uint16) {
		checkExtract(t, body, openai.Shape(shape%5), int(limit))
	})
}

func FuzzDifferentialJSONWalk(f *testing.F) {
	for _, s := range extractOracleStrings {
		f.Add(`"`+s+`"`, uint16(5))
		f.Add(`["`+s+`",{"k":"`+s+`"}]`, uint16(9))
	}
	f.Fuzz(func(t *testing.T, s string, limit uint16) {
		checkWalk(t, s, int(limit))
	})
}
