package signals

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Differential tests: the complexity scorer and the keyword matcher must
// give exactly the results of their previous implementations (oracle_test.go)
// on any input. Speed is measured by the benchmarks; these pin behaviour.

// oracleAlphabet mixes the things the scanners look at (cue words and
// phrases, list markers, fences, code line ends, LaTeX, exponents, math
// runes, numbers with commas, apostrophes and hyphens, the two runes that
// fold to ASCII) with invalid UTF-8 and other multi-byte text.
var oracleAlphabet = []string{
	"a", "Z", "q", " ", "  ", "\t", "\n", "\r\n", "\n\n", "é", "€", "😀", "\u212A", "\u017F", "\xff", "\xe2\x84", "\xc5",
	"0", "9", "300", "1,000", "5 ", "2000 words", "3 pages", "?", "'", "-", "*", "1. ", "2) ", "- ", "* ", "```", "`",
	";", "{", "}", ")", "))", "\\frac", "\\", "x^2", "^{", "∑", "≤", "π", "×",
	"step", "by", "step-by-step", "walk me through", "first", "then", "next", "finally", "must", "must not",
	"at least", "no more than", "don't", "Don't", "shouldn't", "only", "prove", "integral", "detailed", "in depth",
	"report", "words", "lines", "pages", "compare", "trade-offs", "pros and cons", "why", "design", "root cause",
	"mustard", "project atlas", "PROJECT ATLAS", "internal only", "Internal Only", "atlas", "proj", "ect", "intern",
	"al on", "ly", "ATLA\u017F", "KELVIN", "\u212Aelvin", "secret:", "password=", "Q3 forecast", "AB7", "colour", "color",
	"ma\u212Ae", "MAKE", "ja\u017Fper", "JASPER", "oa\u212Awood", "OAKWOOD", "en\u017Fure", "ENSURE", "ma", "wood", "ure",
}

func oracleText(rng *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		b = append(b, oracleAlphabet[rng.IntN(len(oracleAlphabet))]...)
	}
	return b
}

// oracleExtraction builds an Extraction over text with the split points and
// counters a real extraction could have (and some it could not).
func oracleExtraction(text []byte, a, b uint16, msgs, sys uint8, trunc bool, extra uint16) *Extraction {
	x := &Extraction{Text: text}
	n := len(text)
	x.LastUserLen = int(a) % (n + 1)
	x.SystemEnd = x.LastUserLen + int(b)%(n-x.LastUserLen+1)
	x.Messages = int(msgs)
	x.SystemMessages = int(sys) % (int(msgs) + 1)
	x.Truncated = trunc
	x.PromptBytes = n
	if trunc {
		x.PromptBytes += int(extra)
	}
	// Messages: the last user turn, then the system and history regions
	// cut at every turn separator, as Extract lays them out.
	addRegion := func(lo, hi int) {
		for lo < hi {
			end := hi
			if k := strings.Index(string(text[lo:hi]), turnSeparator); k >= 0 {
				end = lo + k
			}
			if end > lo {
				x.segs = append(x.segs, segment{lo, end})
			}
			lo = min(hi, end+len(turnSeparator))
		}
	}
	if x.LastUserLen > 0 {
		x.segs = append(x.segs, segment{0, x.LastUserLen})
	}
	addRegion(x.LastUserLen, x.SystemEnd)
	addRegion(x.SystemEnd, n)
	return x
}

func checkComplexity(t *testing.T, x *Extraction) {
	t.Helper()
	got, gf := ComplexityOf(x)
	want, wf := oldComplexityOf(x)
	if math.Float64bits(got) != math.Float64bits(want) || gf != wf {
		t.Fatalf("ComplexityOf(%q, user %d, system end %d, msgs %d/%d, truncated %v/%d)\n got %v %+v\nwant %v %+v",
			clip(string(x.Text), 200), x.LastUserLen, x.SystemEnd, x.Messages, x.SystemMessages, x.Truncated, x.PromptBytes,
			got, gf, want, wf)
	}
}

func TestComplexityMatchesOracle(t *testing.T) {
	t.Run("bench bodies", func(t *testing.T) {
		for _, bb := range benchBodies {
			var x Extraction
			x.Extract(benchRequest(t, bb.file), config.DefaultMaxClassifierChars)
			checkComplexity(t, &x)
		}
	})
	t.Run("cold corpus", func(t *testing.T) {
		for _, sz := range coldSizes {
			for _, x := range coldExtractions(t, sz.target)[:64] {
				checkComplexity(t, x)
			}
		}
	})
	t.Run("examples", func(t *testing.T) {
		for _, e := range DefaultExamples() {
			text := []byte(e.Text)
			checkComplexity(t, &Extraction{Text: text, Messages: 1, segs: []segment{{0, len(text)}}})
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for i := range 4000 {
			text := oracleText(rng, i%300)
			checkComplexity(t, oracleExtraction(text, uint16(rng.Uint32()), uint16(rng.Uint32()),
				uint8(rng.Uint32()), uint8(rng.Uint32()), rng.IntN(4) == 0, uint16(rng.Uint32())))
		}
	})
	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for i := range 2000 {
			text := make([]byte, i%200)
			for j := range text {
				text[j] = byte(rng.Uint32())
			}
			checkComplexity(t, oracleExtraction(text, uint16(rng.Uint32()), uint16(rng.Uint32()), 3, 1, false, 0))
		}
	})
}

func FuzzComplexityOracle(f *testing.F) {
	for _, bb := range benchBodies {
		body, err := os.ReadFile(bb.file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, uint16(300), uint16(500), uint8(7), uint8(1), false, uint16(0))
	}
	for _, s := range []string{"", "hi", "Explain it step-by-step.\n1. a\n2) b\n- c\n```go\nx := 1;\n```",
		"Prove \\int x^2 ∑ ≤ in 3000 words, 5 pages", "don't walk-through first then", "\xff\xfe\u212A\u017F"} {
		f.Add([]byte(s), uint16(len(s)/2), uint16(len(s)), uint8(3), uint8(1), true, uint16(900))
	}
	f.Fuzz(func(t *testing.T, text []byte, a, b uint16, msgs, sys uint8, trunc bool, extra uint16) {
		checkComplexity(t, oracleExtraction(text, a, b, msgs, sys, trunc, extra))
	})
}

// oracleKeywordRules exercise every path of the matcher: the default rule,
// case-insensitive and case-sensitive literals, literals with 'k' and 's'
// (which the Kelvin sign and the long s fold to), alternations, short
// literals and patterns without a literal (the regexp always runs).
var oracleKeywordRules = map[string]config.KeywordRule{
	"confidential": {Patterns: []string{`(?i)\bproject atlas\b`, `(?i)\binternal only\b`}, Target: "onprem"},
	"atlas-alias":  {Patterns: []string{`(?i)atlas-\d+`}, Signal: "confidential"},
	"finance":      {Patterns: []string{`\bQ[1-4] (earnings|forecast)\b`}},
	"short":        {Patterns: []string{`\b[A-Z]{2}\d\b`}},
	"kelvin":       {Patterns: []string{`(?i)kelvin`, `(?i)\bsst\b`}},
	"folds":        {Patterns: []string{`(?i)make`, `(?i)jasper`, `(?i)oakwood`, `(?i)ensure`}},
	"secrets":      {Patterns: []string{`(?i)(secret|password)s?[=:]`}},
	"colour":       {Patterns: []string{`colou?r`}, Signal: "spelling"},
	"tiny":         {Patterns: []string{`(?i)ab+cd`}, Signal: "spelling"},
	"utf8":         {Patterns: []string{`(?i)münchen`}},
}

func checkKeywords(t *testing.T, k *Keywords, text []byte) {
	t.Helper()
	var l1, l2 []byte
	gs, gr := k.Match(text, &l1, nil, nil)
	ws, wr := oldKeywordsMatch(k, text, &l2, nil, nil)
	if !slices.Equal(gs, ws) || !slices.Equal(gr, wr) {
		t.Fatalf("Match(%q) = %v %v, old matcher %v %v", clip(string(text), 200), gs, gr, ws, wr)
	}
	// And both agree with running every rule's regexp.
	var bs, br []string
	for i := range k.rules {
		if k.rules[i].re.Match(text) {
			bs = append(bs, k.rules[i].signal)
			br = append(br, k.rules[i].name)
		}
	}
	slices.Sort(bs)
	bs = slices.Compact(bs)
	if len(text) > 0 && (!slices.Equal(gs, bs) || !slices.Equal(gr, br)) {
		t.Fatalf("Match(%q) = %v %v, regexps alone %v %v", clip(string(text), 200), gs, gr, bs, br)
	}
}

func oracleKeywords(tb testing.TB) []*Keywords {
	tb.Helper()
	def, err := NewKeywords(testSnapshot(tb, nil).Config.Routing.Keywords)
	if err != nil {
		tb.Fatal(err)
	}
	all, err := NewKeywords(oracleKeywordRules)
	if err != nil {
		tb.Fatal(err)
	}
	return []*Keywords{def, all}
}

func TestKeywordsMatchOracle(t *testing.T) {
	ks := oracleKeywords(t)
	var texts [][]byte
	for _, bb := range benchBodies {
		var x Extraction
		x.Extract(benchRequest(t, bb.file), config.DefaultMaxClassifierChars)
		texts = append(texts, x.Text)
	}
	for _, x := range coldExtractions(t, 2<<10)[:64] {
		texts = append(texts, x.Text)
	}
	rng := rand.New(rand.NewPCG(15, 16))
	for i := range 4000 {
		texts = append(texts, oracleText(rng, i%120))
	}
	for i := range 1000 {
		b := make([]byte, i%64)
		for j := range b {
			b[j] = "aAtTlLsSkK \xe2\x84\xaa\xc5\xbf-0pPrRoOjJeEcCiInNyY"[rng.IntN(35)]
		}
		texts = append(texts, b)
	}
	for _, k := range ks {
		for _, text := range texts {
			checkKeywords(t, k, text)
		}
	}
}

func FuzzKeywordsOracle(f *testing.F) {
	for _, s := range []string{"", "project atlas", "PROJECT ATLA\u017F", "Internal-only", "internal only!", "\u212Aelvin",
		"Q3 forecast", "AB7", "password=x", "colour", "abbbcd", "MÜNCHEN", "\xff\xe2\x84\xaa"} {
		f.Add([]byte(s))
	}
	ks := oracleKeywords(f)
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, k := range ks {
			checkKeywords(t, k, text)
		}
		// Long texts take the bulk paths.
		long := []byte(strings.Repeat(string(text), 1+300/(len(text)+1)))
		for _, k := range ks {
			checkKeywords(t, k, long)
		}
	})
}
