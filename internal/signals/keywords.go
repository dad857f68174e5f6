package signals

import (
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
// every match must contain one. The text is lowercased once (ASCII, plus
// the two non-ASCII runes that case-fold to ASCII letters, U+212A KELVIN
// SIGN and U+017F LONG S) and the literals are searched with strings.Index;
// the regexp only runs for rules whose prefilter hit. Patterns without a
// literal of at least three bytes run unconditionally.

// minPrefilterLen is the shortest literal worth using as a prefilter.
const minPrefilterLen = 3

type keywordRule struct {
	name, signal, target string
	re                   *regexp.Regexp
	lits                 []string // lowercased; nil: always run re
}

// Keywords matches the keyword rules of one config. Immutable and safe for
// concurrent use.
type Keywords struct {
	rules      []keywordRule // sorted by name
	needsLower bool          // some rule has a literal prefilter
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
		k.needsLower = k.needsLower || lits != nil
		k.rules = append(k.rules, keywordRule{name: name, signal: signal, target: r.Target, re: re, lits: lits})
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
		if r.lits != nil && !containsAny(low, r.lits) {
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
