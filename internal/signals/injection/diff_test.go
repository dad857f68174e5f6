package injection

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/signals/injection/internal/oracle"
)

// The differential tests compare the scanner with internal/oracle, a frozen
// copy of the implementation before the fast-path rewrite: every output of
// Score and ScoreInto (score, matched names, nil versus empty Matched) must
// be identical on every input.

var oracleDetector = oracle.New()

// diffOne reports whether d agrees with the oracle on text, and a
// description of the difference when it does not.
func diffOne(d *Detector, reuse *Result, text string) (string, bool) {
	want := oracleDetector.Score(text)
	got := d.Score(text)
	if got.Score != want.Score || !slices.Equal(got.Matched, want.Matched) || (got.Matched == nil) != (want.Matched == nil) {
		return describe("Score", got.Score, got.Matched, want.Score, want.Matched), false
	}
	d.ScoreInto(text, reuse)
	var wantInto oracle.Result
	wantInto.Matched = make([]string, len(reuse.Matched), cap(reuse.Matched))
	oracleDetector.ScoreInto(text, &wantInto)
	if reuse.Score != wantInto.Score || !slices.Equal(reuse.Matched, wantInto.Matched) || (reuse.Matched == nil) != (wantInto.Matched == nil) {
		return describe("ScoreInto", reuse.Score, reuse.Matched, wantInto.Score, wantInto.Matched), false
	}
	return "", true
}

func describe(fn string, gs float64, gm []string, ws float64, wm []string) string {
	return fmt.Sprintf("%s: got %v %#v, oracle %v %#v", fn, gs, gm, ws, wm)
}

func assertSame(t *testing.T, d *Detector, reuse *Result, text string) bool {
	t.Helper()
	if msg, ok := diffOne(d, reuse, text); !ok {
		t.Errorf("differs from oracle on %q (%d bytes): %s", validPrefix(text, 300), len(text), msg)
		return false
	}
	return true
}

// TestDifferentialCorpus: every stored text, and every prefix and suffix of
// the short ones (word, rune and buffer boundaries at the end of the text).
func TestDifferentialCorpus(t *testing.T) {
	d := New()
	var reuse Result
	texts := fixedTexts(t)
	if len(texts) < 500 {
		t.Fatalf("only %d corpus texts", len(texts))
	}
	fails := 0
	for _, s := range texts {
		if !assertSame(t, d, &reuse, s) {
			fails++
		}
		if len(s) <= 400 {
			for i := 1; i < len(s); i++ {
				if !assertSame(t, d, &reuse, s[:i]) || !assertSame(t, d, &reuse, s[i:]) {
					fails++
				}
			}
		}
		if fails > 20 {
			t.Fatal("too many differences")
		}
	}
}

// TestDifferentialGenerated compares on generated texts (fixed seeds).
func TestDifferentialGenerated(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 1000
	}
	d := New()
	var reuse Result
	g := newGen(t, 1)
	fails := 0
	fired := 0
	for i := range n {
		maxLen := 300
		switch i % 10 {
		case 0:
			maxLen = 4000
		case 1, 2:
			maxLen = 40
		}
		s := g.text(maxLen)
		if !assertSame(t, d, &reuse, s) {
			fails++
			if fails > 20 {
				t.Fatal("too many differences")
			}
		}
		if oracleDetector.Score(s).Score > 0 {
			fired++
		}
	}
	// The generator must exercise the heuristics, not only benign text.
	if fired < n/10 {
		t.Fatalf("only %d of %d generated texts fired a heuristic", fired, n)
	}
}

// TestDifferentialHeuristicCoverage checks that the generated texts make
// every heuristic fire at least once, so the differential tests cover them
// all.
func TestDifferentialHeuristicCoverage(t *testing.T) {
	g := newGen(t, 1)
	seen := map[string]int{}
	for _, s := range fixedTexts(t) {
		for _, m := range oracleDetector.Score(s).Matched {
			seen[m]++
		}
	}
	for range 3000 {
		for _, m := range oracleDetector.Score(g.text(300)).Matched {
			seen[m]++
		}
	}
	for _, h := range Heuristics() {
		if seen[h.Name] == 0 {
			t.Errorf("heuristic %s never fires in the differential corpus", h.Name)
		}
	}
}

// TestDifferentialRunes puts every code point (and every invalid 2-, 3- and
// 4-byte form) between and inside words, where the tokenizer's handling of
// non-ASCII characters shows in the result.
func TestDifferentialRunes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow in -short mode")
	}
	d := New()
	var reuse Result
	contexts := [][2]string{
		{"ig", "nore all previous instructions"},
		{"ignore ", " previous instructions"},
		{"DA", "N mode"},
		{"i g n o r ", " "},
	}
	fails := 0
	check := func(enc string) {
		for _, c := range contexts {
			if !assertSame(t, d, &reuse, c[0]+enc+c[1]) {
				fails++
			}
		}
		if fails > 20 {
			t.Fatal("too many differences")
		}
	}
	// Every code point; under the race detector every 7th outside the
	// ranges the scanner treats specially (which the generated texts also
	// cover).
	stride := rune(1)
	if raceEnabled {
		stride = 7
	}
	var buf [4]byte
	for r := rune(0x80); r <= 0x10FFFF; r++ {
		if stride > 1 && r%stride != 0 && r >= 0x800 && !(r >= 0x2000 && r <= 0x2070) &&
			!(r >= 0xFE00 && r <= 0xFF70) && !(r >= 0x1D400 && r <= 0x1D800) && !(r >= 0xE0000 && r <= 0xE0080) {
			continue
		}
		if r >= 0xD800 && r <= 0xDFFF {
			// Surrogates: encoded as CESU-style 3-byte forms, which are invalid.
			buf[0], buf[1], buf[2] = 0xED, byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F)
			check(string(buf[:3]))
			continue
		}
		if r > 0x3FFFF && r < 0xE0000 || r > 0xE0FFF {
			if r&0xFFF != 0 { // sparse sample of the unassigned planes
				continue
			}
		}
		check(string(r))
	}
	// Overlong and truncated forms.
	for b0 := 0x80; b0 < 0x100; b0++ {
		for _, b1 := range []int{0x00, 0x41, 0x80, 0x9F, 0xA0, 0xBF, 0xC0} {
			check(string([]byte{byte(b0), byte(b1)}))
			check(string([]byte{byte(b0), byte(b1), 0x80}))
			check(string([]byte{byte(b0), 0x80, byte(b1), 0x80}))
		}
	}
}

// FuzzDifferential compares the scanner with the oracle on arbitrary bytes.
// Seeds: the fuzz seeds, the FuzzScore corpus, the held-out prompts and
// benchmark paragraphs, and a few generated texts.
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, s := range fuzzCorpusTexts(f, "FuzzScore") {
		f.Add(s)
	}
	benign, attack := heldOutLines(f)
	for _, s := range append(benign, attack...) {
		f.Add(s)
	}
	for _, s := range benignParagraphs {
		f.Add(s)
	}
	f.Add(attackParagraph)
	g := newGen(f, 2)
	for range 64 {
		f.Add(g.text(200))
	}
	d := New()
	f.Fuzz(func(t *testing.T, text string) {
		var reuse Result
		if msg, ok := diffOne(d, &reuse, text); !ok {
			t.Fatalf("differs from oracle on %q: %s", text, msg)
		}
	})
}

// TestVocabularyLookup checks the perfect hash table against the
// vocabulary map: every word is found with its classes, the fast path's
// candidate sets match candidates(), and words that are not in the map
// (other words of the corpus, prefixes and extensions of vocabulary words)
// are not found. It also checks that the multiplier seed is the hint, so
// that initialisation does not search.
func TestVocabularyLookup(t *testing.T) {
	if got := splitmix(vocabSeedHint) | 1; got != vocabMulLo {
		t.Errorf("vocabulary hash seed is not vocabSeedHint %d any more; update the hint", vocabSeedHint)
	}
	lookupWord := func(w string) uint64 {
		var b [maxTok]byte
		copy(b[:], w)
		return lookup(&b, min(len(w), maxTok))
	}
	found := 0
	for w, m := range vocabulary {
		if len(w) > maxWord || !isPlainWord(w) {
			continue
		}
		found++
		if got := lookupWord(w); got != m {
			t.Errorf("lookup(%q) = %#x, want %#x", w, got, m)
		}
		for _, other := range []string{w[:len(w)-1], w + "s", w + "x", "x" + w} {
			if _, ok := vocabulary[other]; ok || len(other) == 0 || len(other) > maxWord {
				continue
			}
			if got := lookupWord(other); got != 0 {
				t.Errorf("lookup(%q) = %#x, want 0 (not a vocabulary word)", other, got)
			}
		}
	}
	for _, e := range vocabEntries {
		if e.cand != candidates(e.mask) || e.pen != penults(e.mask) {
			t.Errorf("entry %#x: cand %#x pen %#x, want %#x %#x", e.lo, e.cand, e.pen, candidates(e.mask), penults(e.mask))
		}
	}
	if found < 200 {
		t.Fatalf("only %d vocabulary words checked", found)
	}
	for _, s := range sentences(fixedTexts(t)) {
		for _, w := range strings.Fields(strings.ToLower(s)) {
			if len(w) > maxWord || !isPlainWord(w) {
				continue
			}
			if got, want := lookupWord(w), vocabulary[w]; got != want {
				t.Errorf("lookup(%q) = %#x, want %#x", w, got, want)
			}
		}
	}
}
