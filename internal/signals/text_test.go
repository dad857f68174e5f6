package signals

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard-llm/switchyard/internal/config"
)

func randomText(rng *rand.Rand, n int) string {
	pieces := []string{"a", "Z", "q", " ", "\n", "é", "€", "😀", "\u212A", "\u017F", "{", "\"", "\\", "\x00", "\xff", "K", "s", "0", "9", "?"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func TestRuneCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		s := randomText(rng, i%67)
		if !utf8.ValidString(s) {
			continue
		}
		if got, want := runeCount(s), utf8.RuneCountInString(s); got != want {
			t.Fatalf("runeCount(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestLowerForPrefilter(t *testing.T) {
	ref := func(s string) string {
		s = strings.ReplaceAll(s, "\u212A", "k")
		s = strings.ReplaceAll(s, "\u017F", "s")
		return lowerASCII(s)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var dst []byte
	for i := range 3000 {
		s := randomText(rng, i%70)
		dst = lowerForPrefilter(dst, []byte(s))
		if got, want := string(dst), ref(s); got != want {
			t.Fatalf("lowerForPrefilter(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 2000 {
		s := randomText(rng, i%50)
		enc := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not JSON: %v", s, enc, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %s -> %q", s, enc, back)
		}
		// And the extractor decodes what we encode.
		dec, nb, _ := appendUnescaped(nil, string(enc), 1<<20)
		if string(dec) != back || nb != len(back) {
			t.Fatalf("appendUnescaped(%s) = %q, want %q", enc, dec, back)
		}
	}
}

func TestParseLLMAnswer(t *testing.T) {
	wrap := func(content string) []byte {
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": content}}}})
		return b
	}
	tests := []struct {
		name   string
		answer []byte
		want   string
		ok     bool
	}{
		{"ok", wrap(`{"intent":"math","confidence":0.8}`), "math", true},
		{"below threshold is unknown", wrap(`{"intent":"math","confidence":0.2}`), UnknownIntent, true},
		{"case and space", wrap(`{"intent":" QA ","confidence":1}`), "qa", true},
		{"fenced", wrap("```json\n{\"intent\":\"code\",\"confidence\":0.9}\n```"), "code", true},
		{"nan-ish", wrap(`{"intent":"math","confidence":-0.1}`), "", false},
		{"not json", wrap(`math`), "", false},
		{"array", wrap(`[1]`), "", false},
		{"no choices", []byte(`{"error":"x"}`), "", false},
		{"content not string", []byte(`{"choices":[{"message":{"content":{"intent":"qa"}}}]}`), "", false},
		{"empty", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLLMAnswer(tt.answer, 0.45)
			if (err == nil) != tt.ok || got.Name != tt.want {
				t.Fatalf("got %+v, %v; want %q ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseLLMAnswer(f *testing.F) {
	f.Add([]byte(`{"choices":[{"message":{"content":"{\"intent\":\"qa\",\"confidence\":0.9}"}}]}`))
	f.Add([]byte(`{"choices":[{"message":{"content":"` + "```" + `{}` + "```" + `"}}]}`))
	f.Add([]byte(`{"choices":[]}`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		in, err := parseLLMAnswer(answer, 0.5)
		if err == nil && in.Name != UnknownIntent && intentIndex(in.Name) < 0 {
			t.Fatalf("accepted unknown intent %q", in.Name)
		}
		if err == nil && (in.Confidence < 0 || in.Confidence > 1) {
			t.Fatalf("accepted confidence %v", in.Confidence)
		}
	})
}

// FuzzTextSignals runs the text scanners (classifier features, complexity,
// keywords) over arbitrary text: they must never panic and stay in range.
func FuzzTextSignals(f *testing.F) {
	for _, s := range []string{"", "hi", "```go\nx := 1;\n```", "1. a\n2) b\n- c", "\\frac{a}{b} x^2 ∑", "don't walk-through", "\xff\xfe", "in 3000 words"} {
		f.Add(s)
	}
	c := testClassifier(f)
	k, err := NewKeywords(map[string]config.KeywordRule{"r": {Patterns: []string{`(?i)\bproject atlas\b`, `\d{4}-\d{4}`}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fb featBuf
		in := c.classify(&fb, []byte(s), []byte(s))
		if in.Confidence < 0 || in.Confidence > 1 || in.Confidence != in.Confidence {
			t.Fatalf("confidence %v", in.Confidence)
		}
		x := Extraction{Text: []byte(s), Messages: 1, PromptBytes: len(s)}
		if v, _ := ComplexityOf(&x); v <= 0 || v >= 1 {
			t.Fatalf("complexity %v", v)
		}
		var lower []byte
		k.Match([]byte(s), &lower, nil, nil)
	})
}
