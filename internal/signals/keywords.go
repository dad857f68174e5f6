package signals

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Keyword rules (routing.keywords): named lists of regular expressions. A
// rule matches when any of its patterns matches anywhere in the classifier
// text; it then raises its signal (Signals.Keywords) and is listed by name
// in Signals.KeywordRules so that routing can apply its target.
//
// Each rule's patterns are compiled into one alternation. Go's regexp is
// linear-time but slow per byte, so every rule also gets a literal
// prefilter computed from the parsed pattern: a set of strings of which
// every match must contain one, searched case-insensitively (ASCII, plus
// the two non-ASCII runes that case-fold to ASCII letters, U+212A KELVIN
// SIGN and U+017F LONG S, as Go's (?i) does); the regexp only runs for
// rules whose prefilter hit. Patterns without a literal of at least three
// bytes run unconditionally.
//
// A literal is found without copying the text: bytes.IndexByte (SIMD)
// finds the literal's rarest byte in either case, and the rest of the
// literal is compared around it. A literal made only of 'k' and 's' (which
// the two runes fold to) has no such anchor; its rule lowercases the text
// once and searches it with strings.Contains.

// minPrefilterLen is the shortest literal worth using as a prefilter.
const minPrefilterLen = 3

type keywordRule struct {
	name, signal, target string
	re                   *regexp.Regexp
	lits                 []string // lowercased; nil: always run re
	// finders search lits in the text as it is; nil when some literal has
	// no anchor (then lits are searched in the lowercased text).
	finders []litFinder
}

// Keywords matches the keyword rules of one config. Immutable and safe for
// concurrent use.
type Keywords struct {
	rules      []keywordRule // sorted by name
	needsLower bool          // some rule searches the lowercased text
}

// NewKeywords compiles rules. Every pattern must compile (config
// validation already checked; this reports which one did not).
func NewKeywords(rules map[string]config.KeywordRule) (*Keywords, error) {
	k := &Keywords{}
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		r := rules[name]
		if len(r.Patterns) == 0 {
			return nil, fmt.Errorf("keyword rule %q: no patterns", name)
		}
		parts := make([]string, len(r.Patterns))
		for i, p := range r.Patterns {
			if _, err := regexp.Compile(p); err != nil {
				return nil, fmt.Errorf("keyword rule %q pattern %d: %w", name, i, err)
			}
			parts[i] = "(?:" + p + ")"
		}
		combined := strings.Join(parts, "|")
		re, err := regexp.Compile(combined)
		if err != nil {
			return nil, fmt.Errorf("keyword rule %q: %w", name, err)
		}
		signal := r.Signal
		if signal == "" {
			signal = name
		}
		lits := prefilter(combined)
		finders := newLitFinders(lits)
		k.needsLower = k.needsLower || lits != nil && finders == nil
		k.rules = append(k.rules, keywordRule{name: name, signal: signal, target: r.Target, re: re, lits: lits, finders: finders})
	}
	return k, nil
}

// Match appends the signals (sorted, unique) and rule names (sorted) of the
// rules matching text. lower is scratch space for the lowercased text.
func (k *Keywords) Match(text []byte, lower *[]byte, signals, rules []string) ([]string, []string) {
	if k == nil || len(k.rules) == 0 || len(text) == 0 {
		return signals, rules
	}
	var low string
	if k.needsLower {
		*lower = lowerForPrefilter((*lower)[:0], text)
		low = bytesString(*lower)
	}
	start := len(signals)
	for i := range k.rules {
		r := &k.rules[i]
		if r.finders != nil {
			if !findAny(text, r.finders) {
				continue
			}
		} else if r.lits != nil && !containsAny(low, r.lits) {
			continue
		}
		if r.re.Match(text) {
			signals = append(signals, r.signal)
			rules = append(rules, r.name)
		}
	}
	sig := signals[start:]
	slices.Sort(sig)
	return signals[:start+len(slices.Compact(sig))], rules
}

// litFinder finds one lowercased ASCII literal in text as
// lowerForPrefilter(text) would contain it, without lowercasing: every
// occurrence has the anchor byte lit[at] (neither 'k' nor 's', so it is one
// ASCII byte of the text, in either case) in its place.
type litFinder struct {
	lit      string
	at       int
	lo, up   byte // the anchor byte and its upper case (equal if not a letter)
	twoCases bool
}

// newLitFinders returns a finder per literal, or nil if some literal has
// no anchor.
func newLitFinders(lits []string) []litFinder {
	if lits == nil {
		return nil
	}
	fs := make([]litFinder, 0, len(lits))
	for _, l := range lits {
		at := -1
		for i := 0; i < len(l); i++ {
			if c := l[i]; c != 'k' && c != 's' && (at < 0 || byteFreq(c) < byteFreq(l[at])) {
				at = i
			}
		}
		if at < 0 {
			return nil
		}
		f := litFinder{lit: l, at: at, lo: l[at], up: l[at]}
		if f.lo >= 'a' && f.lo <= 'z' {
			f.up, f.twoCases = f.lo-'a'+'A', true
		}
		fs = append(fs, f)
	}
	return fs
}

// byteFreq ranks how common an ASCII byte is in prose and code (higher:
// more common), to pick the anchor that stops bytes.IndexByte least often.
func byteFreq(c byte) int {
	const order = "zqxjkvbpygfwmucldrhsnioate " // rarest to most common
	if i := strings.IndexByte(order, c); i >= 0 {
		return 10 + i
	}
	switch {
	case c >= '0' && c <= '9':
		return 8
	case c == '.' || c == ',' || c == '-' || c == '\n':
		return 20
	}
	return 5 // other punctuation
}

func findAny(text []byte, fs []litFinder) bool {
	for i := range fs {
		if fs[i].find(text) {
			return true
		}
	}
	return false
}

func (f *litFinder) find(text []byte) bool {
	if f.scan(text, f.lo) {
		return true
	}
	return f.twoCases && f.scan(text, f.up)
}

// scan tries every occurrence of the anchor byte a.
func (f *litFinder) scan(text []byte, a byte) bool {
	for i := 0; i < len(text); i++ {
		k := bytes.IndexByte(text[i:], a)
		if k < 0 {
			return false
		}
		i += k
		if f.matchAt(text, i) {
			return true
		}
	}
	return false
}

// matchAt compares the literal around its anchor at text[t], byte by
// byte as lowerForPrefilter maps them.
func (f *litFinder) matchAt(text []byte, t int) bool {
	j := t + 1
	for q := f.at + 1; q < len(f.lit); q++ {
		c := f.lit[q]
		switch {
		case j < len(text) && foldASCII(text[j]) == c:
			j++
		case c == 'k' && j+2 < len(text) && text[j] == 0xE2 && text[j+1] == 0x84 && text[j+2] == 0xAA:
			j += 3
		case c == 's' && j+1 < len(text) && text[j] == 0xC5 && text[j+1] == 0xBF:
			j += 2
		default:
			return false
		}
	}
	j = t
	for q := f.at - 1; q >= 0; q-- {
		c := f.lit[q]
		switch {
		case j > 0 && foldASCII(text[j-1]) == c:
			j--
		case c == 'k' && j >= 3 && text[j-3] == 0xE2 && text[j-2] == 0x84 && text[j-1] == 0xAA:
			j -= 3
		case c == 's' && j >= 2 && text[j-2] == 0xC5 && text[j-1] == 0xBF:
			j -= 2
		default:
			return false
		}
	}
	return true
}

func foldASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// lowerForPrefilter writes text to dst with ASCII letters lowercased and
// the Kelvin sign and long s (which regexp's (?i) folds to k and s)
// replaced by their ASCII letters. ASCII runs go eight bytes at a time.
func lowerForPrefilter(dst, text []byte) []byte {
	dst = slices.Grow(dst[:0], len(text))[:len(text)]
	const ones, high = 0x0101010101010101, 0x8080808080808080
	i, j := 0, 0
	for i < len(text) {
		if i+8 <= len(text) {
			w := binary.LittleEndian.Uint64(text[i:])
			if w&high == 0 {
				// Bytes in 'A'..'Z' get 0x20 added: a high bit appears where
				// b >= 'A' and where b > 'Z'; no byte carries into the next.
				upper := (w + (0x80-'A')*ones) &^ (w + (0x80-'Z'-1)*ones) & high
				binary.LittleEndian.PutUint64(dst[j:], w|upper>>2)
				i += 8
				j += 8
				continue
			}
		}
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x84 && text[i+2] == 0xAA: // U+212A
			c = 'k'
			i += 2
		case c == 0xC5 && i+1 < len(text) && text[i+1] == 0xBF: // U+017F
			c = 's'
			i++
		}
		dst[j] = c
		i++
		j++
	}
	return dst[:j]
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// prefilter returns literals one of which every match of pattern contains,
// lowercased, or nil when no useful set exists.
func prefilter(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := required(re.Simplify())
	if !ok || len(lits) == 0 {
		return nil
	}
	for _, l := range lits {
		if len(l) < minPrefilterLen {
			return nil
		}
	}
	slices.Sort(lits)
	return slices.Compact(lits)
}

// required computes the literal set of re (see prefilter); ok is false
// when a match need not contain any literal.
func required(re *syntax.Regexp) (lits []string, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if !isASCII(s) {
			// The text is lowercased for ASCII only (and two runes are
			// rewritten), so a non-ASCII literal is not a safe prefilter.
			return nil, false
		}
		return []string{lowerASCII(s)}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			l, ok := required(sub)
			if !ok {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	case syntax.OpConcat:
		return requiredConcat(re.Sub)
	}
	return nil, false
}

// requiredConcat picks the strongest literal set of a concatenation: runs
// of adjacent literals are joined (zero-width assertions in between are
// transparent), and the candidate with the longest shortest literal wins.
func requiredConcat(subs []*syntax.Regexp) ([]string, bool) {
	var best []string
	bestScore := -1
	consider := func(l []string) {
		if len(l) == 0 {
			return
		}
		score := len(l[0])
		for _, s := range l[1:] {
			score = min(score, len(s))
		}
		if score > bestScore {
			best, bestScore = l, score
		}
	}
	var run strings.Builder
	flush := func() {
		if run.Len() > 0 {
			consider([]string{run.String()})
			run.Reset()
		}
	}
	for _, sub := range subs {
		switch sub.Op {
		case syntax.OpLiteral:
			l, ok := required(sub)
			if !ok {
				flush()
				continue
			}
			run.WriteString(l[0])
		case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
			syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpEmptyMatch:
			// zero-width: the literals around it are adjacent in the text
		default:
			flush()
			if l, ok := required(sub); ok {
				consider(l)
			}
		}
	}
	flush()
	return best, bestScore >= 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
