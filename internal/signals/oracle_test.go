package signals

// Test-only oracle: verbatim copies of the complexity scorer and the keyword
// matcher as they were before they were rewritten for speed (table-driven
// byte classes, fewer passes). The differential tests and fuzz targets in
// oracle_diff_test.go check that the production code gives identical
// results on arbitrary bytes. Identifiers carry an "old" prefix; the code
// is otherwise unchanged.

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Weights of the complexity score (README "Signals" lists them).
const (
	oldComplexityBias = -2.5
	oldWLength        = 2.5
	oldWQuestions     = 0.8
	oldWSteps         = 1.4
	oldWCode          = 1.2
	oldWMath          = 2.2
	oldWConstraints   = 1.8
	oldWDepth         = 1.0
	oldWOutput        = 1.5
	oldWAnalysis      = 2.0
)

// Saturation points: the count at which a feature reaches 1.
const (
	oldLengthFullChars = 16000 // log2(1+n/100)/log2(1+160)
	oldCapQuestions    = 4
	oldCapSteps        = 4
	oldCapCodeLines    = 6
	oldCapMath         = 4
	oldCapConstraints  = 6
	oldDepthFullMsgs   = 32 // log2(messages)/log2(32)
	oldCapOutput       = 3
	oldCapAnalysis     = 4
)

// Score combines the oldFeatures into the complexity score in (0,1).
func oldScore(f ComplexityFeatures) float64 {
	z := oldComplexityBias +
		oldWLength*f.Length + oldWQuestions*f.Questions + oldWSteps*f.Steps +
		oldWCode*f.Code + oldWMath*f.Math + oldWConstraints*f.Constraints +
		oldWDepth*f.Depth + oldWOutput*f.Output + oldWAnalysis*f.Analysis
	return 1 / (1 + math.Exp(-z))
}

// Cue categories of the phrase table.
const (
	oldCueNone uint8 = iota
	oldCueSteps
	oldCueFirst
	oldCueThen
	oldCueConstraint
	oldCueMath
	oldCueOutput
	oldCueAnalysis
	oldCueUnit // "words", "pages": output size when preceded by a number
	oldNumCues
)

var oldCuePhrases = map[uint8][]string{
	oldCueSteps: {"step by step", "walk me through", "walk through", "break down", "break it down",
		"steps", "finally", "afterwards", "phased", "roadmap", "in order", "one by one", "stage by stage"},
	oldCueFirst: {"first", "firstly"},
	oldCueThen:  {"then", "next", "secondly"},
	oldCueConstraint: {"must", "must not", "at least", "at most", "without", "exactly", "no more than",
		"no less than", "only", "ensure", "make sure", "do not", "don't", "never", "should not",
		"shouldn't", "required", "requirement", "requirements", "constraint", "constraints",
		"within", "unless", "except", "mandatory", "strictly", "limit", "guarantee"},
	oldCueMath: {"prove", "proof", "derive", "derivation", "integral", "integrate", "derivative",
		"differentiate", "equation", "equations", "theorem", "lemma", "matrix", "eigenvalue",
		"eigenvalues", "probability", "expected value", "variance", "minimize", "maximize",
		"converge", "convergence", "polynomial", "induction"},
	oldCueOutput: {"detailed", "comprehensive", "in depth", "thorough", "thoroughly", "exhaustive",
		"extensive", "essay", "report", "long form", "elaborate", "in detail", "full", "whitepaper"},
	oldCueAnalysis: {"analyze", "analyse", "analysis", "compare", "comparison", "evaluate", "assess",
		"trade off", "tradeoff", "trade offs", "tradeoffs", "pros and cons", "why", "justify",
		"reasoning", "implications", "design", "architecture", "strategy", "optimize", "optimise",
		"debug", "root cause", "diagnose", "critique", "recommend", "decide", "consequences", "risks"},
	oldCueUnit: {"words", "pages", "paragraphs", "sections", "slides", "chapters", "lines"},
}

// oldCueTable is an open-addressing hash set of word-sequence hashes.
type oldCueTable struct {
	keys []uint64
	cues []uint8
	mask uint64
}

const oldCueTableBits = 10

var oldCues = oldBuildCueTable()

// oldCueTail marks a word that ends some multi-word phrase: only after such a
// word are the bigram and trigram looked up.
const oldCueTail uint8 = 0x80

func oldBuildCueTable() *oldCueTable {
	t := &oldCueTable{keys: make([]uint64, 1<<oldCueTableBits), cues: make([]uint8, 1<<oldCueTableBits), mask: 1<<oldCueTableBits - 1}
	for cue, phrases := range oldCuePhrases {
		for _, p := range phrases {
			var h, last uint64
			n := 0
			for i := 0; i < len(p); {
				j := i
				for j < len(p) && p[j] != ' ' {
					j++
				}
				last = oldWordHash(p[i:j])
				h = oldPhraseStep(h, n, last)
				n++
				i = j + 1
			}
			t.insert(h, cue, false)
			if n > 1 {
				t.insert(last, 0, true)
			}
		}
	}
	return t
}

func oldWordHash(w string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint64(w[i])) * fnvPrime
	}
	return h | 1 // never 0: 0 marks an empty slot
}

// oldPhraseStep extends the hash of an n-word phrase by one word.
func oldPhraseStep(h uint64, n int, w uint64) uint64 {
	if n == 0 {
		return w
	}
	return ((h*mixMul)^w)*fnvPrime | 1
}

// insert adds h with cue (0 keeps an existing cue), or marks it as a
// phrase tail.
func (t *oldCueTable) insert(h uint64, cue uint8, tail bool) {
	for i := (h * mixMul) >> (64 - oldCueTableBits); ; i = (i + 1) & t.mask {
		if t.keys[i] == 0 || t.keys[i] == h {
			t.keys[i] = h
			if cue != 0 {
				t.cues[i] = t.cues[i]&oldCueTail | cue
			}
			if tail {
				t.cues[i] |= oldCueTail
			}
			return
		}
	}
}

func (t *oldCueTable) lookup(h uint64) uint8 {
	for i := (h * mixMul) >> (64 - oldCueTableBits); ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case h:
			return t.cues[i]
		case 0:
			return oldCueNone
		}
	}
}

// oldComplexityScan holds the raw counts of one pass.
type oldComplexityScan struct {
	cue                                   [oldNumCues]int
	nonSpace, questions, numbered, bullet int
	fences, codeLines, mathMarks          int
}

// oldHistoryWeight is how much the cues and length of earlier turns count
// next to the last user turn. The system prompt does not count at all: it
// is the same for every request of an application, usually long and full
// of "must"/"never", and would push all of them up alike.
const oldHistoryWeight = 0.5

// oldComplexityOf returns the complexity score of an extracted request and the
// oldFeatures it came from.
//
// Since messages are scanned one by one (messages.go), the oracle is the
// old scanner run per message, combined as ComplexityOf combines them: the
// differential tests pin the scanner, not the composition.
func oldComplexityOf(x *Extraction) (float64, ComplexityFeatures) {
	var ask, hist oldComplexityScan
	for i, sg := range x.segs {
		var m oldComplexityScan
		m.scan(x.Text[sg.start:sg.end])
		switch {
		case x.LastUserLen == 0:
			ask.add(&m) // no user turn: everything is the ask
		case i == 0:
			ask = m
		case sg.start >= x.SystemEnd:
			hist.add(&m)
		}
	}
	f := oldFeatures(x, &ask, &hist)
	return oldScore(f), f
}

func (s *oldComplexityScan) add(o *oldComplexityScan) {
	for i := range s.cue {
		s.cue[i] += o.cue[i]
	}
	s.nonSpace += o.nonSpace
	s.questions += o.questions
	s.numbered += o.numbered
	s.bullet += o.bullet
	s.fences += o.fences
	s.codeLines += o.codeLines
	s.mathMarks += o.mathMarks
}

func oldFeatures(x *Extraction, ask, hist *oldComplexityScan) ComplexityFeatures {
	histChars := float64(hist.nonSpace)
	if x.Truncated && x.LastUserLen > 0 {
		// Extrapolate the earlier turns we did not see from those we did.
		seen := len(x.Text) - x.SystemEnd
		if seen > 0 {
			unseen := max(0, x.PromptBytes-len(x.Text))
			histChars *= float64(seen+unseen) / float64(seen)
		}
	}
	askChars := float64(ask.nonSpace)
	if x.Truncated && x.LastUserLen == 0 && len(x.Text) > 0 {
		askChars *= float64(x.PromptBytes) / float64(len(x.Text))
	}
	// n combines a count of the ask with the same count of the history.
	n := func(a, h int) float64 { return float64(a) + oldHistoryWeight*float64(h) }
	var f ComplexityFeatures
	chars := askChars + oldHistoryWeight*histChars
	f.Length = min(1, math.Log2(1+chars/100)/math.Log2(1+oldLengthFullChars/100))
	f.Questions = oldCapped(n(ask.questions, hist.questions), oldCapQuestions)
	f.Steps = oldCapped(n(ask.steps(), hist.steps()), oldCapSteps)
	f.Code = oldCapped(n(ask.code(), hist.code()), oldCapCodeLines)
	f.Math = oldCapped(n(ask.cue[oldCueMath]+ask.mathMarks, hist.cue[oldCueMath]+hist.mathMarks), oldCapMath)
	f.Constraints = oldCapped(n(ask.constraints(), hist.constraints()), 2*oldCapConstraints)
	if turns := x.Messages - x.SystemMessages; turns > 1 {
		f.Depth = min(1, math.Log2(float64(turns))/math.Log2(oldDepthFullMsgs))
	}
	f.Output = oldCapped(n(ask.cue[oldCueOutput]+ask.cue[oldCueUnit], hist.cue[oldCueOutput]+hist.cue[oldCueUnit]), oldCapOutput)
	f.Analysis = oldCapped(n(ask.cue[oldCueAnalysis], hist.cue[oldCueAnalysis]), oldCapAnalysis)
	return f
}

func (s *oldComplexityScan) steps() int {
	n := s.cue[oldCueSteps] + s.numbered
	if s.cue[oldCueFirst] > 0 && s.cue[oldCueThen] > 0 {
		n += 2
	}
	return n
}

func (s *oldComplexityScan) code() int {
	if s.fences >= 2 {
		return s.codeLines + oldCapCodeLines
	}
	return s.codeLines
}

func (s *oldComplexityScan) constraints() int { return s.cue[oldCueConstraint]*2 + s.bullet }

func oldCapped(n float64, c int) float64 { return min(n, float64(c)) / float64(c) }

func oldIsASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// scan counts the cues of text in one pass.
func (s *oldComplexityScan) scan(text []byte) {
	var prev1, prev2 uint64 // hashes of the previous two words (0: none)
	lastNum := -1           // value of the number token just before, -1 if none
	lineStart := true
	lineLast := byte(0) // last non-space byte of the current line
	for i := 0; i < len(text); {
		c := text[i]
		if lineStart {
			lineStart = false
			j := i
			for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			s.listItem(text[j:])
			if j+3 <= len(text) && text[j] == '`' && text[j+1] == '`' && text[j+2] == '`' {
				s.fences++
			}
		}
		switch {
		case oldIsASCIILetter(c):
			h := uint64(fnvOffset)
			j := i
			for j < len(text) && (oldIsASCIILetter(text[j]) || text[j] == '\'' && j+1 < len(text) && oldIsASCIILetter(text[j+1])) {
				h = (h ^ uint64(text[j]|0x20)) * fnvPrime
				j++
			}
			w := h | 1
			s.word(w, prev1, prev2, lastNum)
			prev2, prev1 = prev1, w
			lastNum = -1
			s.nonSpace += j - i
			lineLast = text[j-1]
			i = j
			continue
		case c >= '0' && c <= '9':
			n := 0
			j := i
			for j < len(text) && (text[j] >= '0' && text[j] <= '9' || text[j] == ',' && j+1 < len(text) && text[j+1] >= '0' && text[j+1] <= '9') {
				if text[j] != ',' && n < 1e6 {
					n = n*10 + int(text[j]-'0')
				}
				j++
			}
			lastNum = n
			prev1, prev2 = 0, 0
			s.nonSpace += j - i
			lineLast = text[j-1]
			i = j
			continue
		case c == '\n':
			if lineLast == ';' || lineLast == '{' || lineLast == '}' || lineLast == ')' && i > 0 && text[i-1] == ')' {
				s.codeLines++
			}
			lineStart, lineLast = true, 0
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case c == '?':
			s.questions++
		case c == '\\':
			if i+1 < len(text) && oldIsASCIILetter(text[i+1]) {
				s.mathMarks++ // \frac, \int, \sum …
			}
		case c == '^':
			if i > 0 && i+1 < len(text) && oldIsAlnum(text[i-1]) && (oldIsAlnum(text[i+1]) || text[i+1] == '{' || text[i+1] == '(') {
				s.mathMarks++
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(text[i:])
			if oldIsMathRune(r) {
				s.mathMarks++
			}
			s.nonSpace += n
			lineLast = 0
			i += n
			prev1, prev2 = 0, 0
			continue
		}
		// punctuation: ends a phrase except for the joiners - and '
		if c != '-' {
			prev1, prev2 = 0, 0
		}
		lastNum = -1
		s.nonSpace++
		lineLast = c
		i++
	}
	if lineLast == ';' || lineLast == '{' || lineLast == '}' {
		s.codeLines++
	}
}

func oldIsAlnum(c byte) bool { return oldIsASCIILetter(c) || c >= '0' && c <= '9' || c == ')' }

func oldIsMathRune(r rune) bool {
	switch r {
	case '∑', '∫', '√', '≤', '≥', '≠', '∞', '≈', 'π', '∂', '∀', '∃', '∈', '⊂', '×', '÷', '±', 'Σ', 'Δ', 'λ', 'θ':
		return true
	}
	return false
}

// word records the cues ended by word w.
func (s *oldComplexityScan) word(w, prev1, prev2 uint64, lastNum int) {
	e := oldCues.lookup(w)
	if cue := e &^ oldCueTail; cue != oldCueNone {
		if cue == oldCueUnit {
			if lastNum >= 300 || lastNum >= 3 && w != oldCueWordsHash && w != oldCueLinesHash {
				s.cue[oldCueUnit]++ // "in 2000 words", "5 pages"
			}
		} else {
			s.cue[cue]++
		}
	}
	if e&oldCueTail == 0 || prev1 == 0 {
		return
	}
	h2 := oldPhraseStep(prev1, 1, w)
	if cue := oldCues.lookup(h2); cue != oldCueNone {
		s.cue[cue]++
	}
	if prev2 == 0 {
		return
	}
	if cue := oldCues.lookup(oldPhraseStep(oldPhraseStep(prev2, 1, prev1), 2, w)); cue != oldCueNone {
		s.cue[cue]++
	}
}

var (
	oldCueWordsHash = oldWordHash("words")
	oldCueLinesHash = oldWordHash("lines")
)

// listItem counts a numbered ("1.", "2)") or bulleted ("- ", "* ") line.
func (s *oldComplexityScan) listItem(line []byte) {
	if len(line) < 2 {
		return
	}
	if (line[0] == '-' || line[0] == '*') && line[1] == ' ' {
		s.bullet++
		return
	}
	j := 0
	for j < len(line) && j < 3 && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j > 0 && j+1 < len(line) && (line[j] == '.' || line[j] == ')') && line[j+1] == ' ' {
		s.numbered++
	}
}

// Match appends the signals (sorted, unique) and rule names (sorted) of the
// rules matching text. lower is scratch space for the lowercased text.
func oldKeywordsMatch(k *Keywords, text []byte, lower *[]byte, signals, rules []string) ([]string, []string) {
	if k == nil || len(k.rules) == 0 || len(text) == 0 {
		return signals, rules
	}
	var low string
	needsLower := false // as NewKeywords computed it before: some rule has a prefilter
	for i := range k.rules {
		needsLower = needsLower || k.rules[i].lits != nil
	}
	if needsLower {
		*lower = oldLowerForPrefilter((*lower)[:0], text)
		low = bytesString(*lower)
	}
	start := len(signals)
	for i := range k.rules {
		r := &k.rules[i]
		if r.lits != nil && !oldContainsAny(low, r.lits) {
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

func oldContainsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// oldLowerForPrefilter writes text to dst with ASCII letters lowercased and
// the Kelvin sign and long s (which regexp's (?i) folds to k and s)
// replaced by their ASCII letters. ASCII runs go eight bytes at a time.
func oldLowerForPrefilter(dst, text []byte) []byte {
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
