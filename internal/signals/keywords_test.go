package signals

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

func TestKeywordsMatch(t *testing.T) {
	k, err := NewKeywords(map[string]config.KeywordRule{
		"confidential": {Patterns: []string{`(?i)\bproject atlas\b`, `(?i)\binternal only\b`}, Signal: "confidential", Target: "onprem"},
		"atlas-alias":  {Patterns: []string{`(?i)atlas-\d+`}, Signal: "confidential"},
		"finance":      {Patterns: []string{`\bQ[1-4] (earnings|forecast)\b`}, Signal: "finance"},
		"short":        {Patterns: []string{`\b[A-Z]{2}\d\b`}, Signal: "short"}, // no literal: always runs
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text    string
		signals []string
		rules   []string
	}{
		{"nothing to see", nil, nil},
		{"About PROJECT ATLAS and the Q3 forecast", []string{"confidential", "finance"}, []string{"confidential", "finance"}},
		{"ticket ATLAS-42, internal only", []string{"confidential"}, []string{"atlas-alias", "confidential"}},
		{"q3 forecast", nil, nil}, // case-sensitive rule
		{"the code AB7 here", []string{"short"}, []string{"short"}},
		{"project atlases", nil, nil},                                           // word boundary
		{"ref ATLA\u017F-7", []string{"confidential"}, []string{"atlas-alias"}}, // (?i) folds ſ (U+017F) to s
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var lower []byte
			sig, rules := k.Match([]byte(tt.text), &lower, nil, nil)
			if !slices.Equal(sig, tt.signals) || !slices.Equal(rules, tt.rules) {
				t.Fatalf("got signals %v rules %v, want %v %v", sig, rules, tt.signals, tt.rules)
			}
		})
	}
}

func TestKeywordsBadPattern(t *testing.T) {
	_, err := NewKeywords(map[string]config.KeywordRule{"bad": {Patterns: []string{"("}}})
	if err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestPrefilter(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string // nil: no prefilter
	}{
		{`(?i)\bproject atlas\b`, []string{"project atlas"}},
		{`foo|barbaz`, []string{"barbaz", "foo"}},
		{`(?:foo)|(?:x+)`, nil},
		{`a.*b`, nil},
		{`invoice\s+#?\d+`, []string{"invoice"}},
		{`(?i)(secret|password)s?:`, []string{"password", "secret"}},
		{`\d{16}`, nil},
		{`(?:ab)`, nil},      // too short
		{`(?i)münchen`, nil}, // non-ASCII literal: the regexp always runs
		{`colou?r`, []string{"colo"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			if got := prefilter(tt.pattern); !slices.Equal(got, tt.want) {
				t.Fatalf("prefilter(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

// TestPrefilterNeverHides checks the prefilter's contract on random text:
// whenever the regexp matches, the prefilter must have let it run.
func TestPrefilterNeverHides(t *testing.T) {
	patterns := []string{`(?i)\bproject atlas\b`, `(?i)(secret|token)[=:]\w+`, `colou?r`, `(?i)kelvin`, `(?i)ab+cd`, `x[yz]{2,}w`, `(?i)sst`}
	alphabet := []string{"a", "b", "c", "d", "k", "K", "\u212A", "s", "S", "\u017F", "project", " ", "ATLAS", "atlas", "secret", "=", ":", "elvin", "colour", "x", "y", "z", "w", "t", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		lits := prefilter(p)
		var lower []byte
		for range 3000 {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			text := []byte(b.String())
			if !re.Match(text) || lits == nil {
				continue
			}
			lower = lowerForPrefilter(lower[:0], text)
			if !containsAny(string(lower), lits) {
				t.Fatalf("pattern %q matches %q but prefilter %q rejected it", p, text, lits)
			}
		}
	}
}
