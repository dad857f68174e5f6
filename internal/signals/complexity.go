package signals

import (
	"encoding/binary"
	"math"
	"strings"
	"unicode/utf8"
)

// Complexity scoring: a handful of features of the request, each scaled to
// [0,1], combined linearly and squashed with a logistic function:
//
//	score = 1 / (1 + exp(-(bias + Σ weight_i × feature_i)))
//
// The features, their scaling and weights are in complexityWeights and
// documented in README "Signals". A trivial prompt ("hi") scores about
// 0.08; a long multi-step, constrained, technical ask approaches 1.
//
// One pass over the classifier text finds everything, driven by a table of
// byte classes. Words (ASCII letters, apostrophes between letters;
// everything else splits) are matched exactly against the words of the cue
// phrases, and the phrases they end are looked up by the ids of the last
// two or three words. No regular expressions.

// ComplexityFeatures are the inputs of the complexity score, each in [0,1].
type ComplexityFeatures struct {
	Length      float64 `json:"length"`      // log-scaled non-space characters
	Questions   float64 `json:"questions"`   // '?' count
	Steps       float64 `json:"steps"`       // "step by step", numbered lists, first…then
	Code        float64 `json:"code"`        // code fences, code-like lines
	Math        float64 `json:"math"`        // LaTeX, math symbols, exponents, "prove"/"integral"…
	Constraints float64 `json:"constraints"` // "must", "at least", "without", "exactly"…
	Depth       float64 `json:"depth"`       // conversation length in non-system messages
	Output      float64 `json:"output"`      // "in 2000 words", "detailed", "comprehensive"…
	Analysis    float64 `json:"analysis"`    // "compare", "trade-offs", "why", "design"…
}

// Weights of the complexity score (README "Signals" lists them).
const (
	complexityBias = -2.5
	wLength        = 2.5
	wQuestions     = 0.8
	wSteps         = 1.4
	wCode          = 1.2
	wMath          = 2.2
	wConstraints   = 1.8
	wDepth         = 1.0
	wOutput        = 1.5
	wAnalysis      = 2.0
)

// Saturation points: the count at which a feature reaches 1.
const (
	lengthFullChars = 16000 // log2(1+n/100)/log2(1+160)
	capQuestions    = 4
	capSteps        = 4
	capCodeLines    = 6
	capMath         = 4
	capConstraints  = 6
	depthFullMsgs   = 32 // log2(messages)/log2(32)
	capOutput       = 3
	capAnalysis     = 4
)

// Score combines the features into the complexity score in (0,1).
func (f ComplexityFeatures) Score() float64 {
	z := complexityBias +
		wLength*f.Length + wQuestions*f.Questions + wSteps*f.Steps +
		wCode*f.Code + wMath*f.Math + wConstraints*f.Constraints +
		wDepth*f.Depth + wOutput*f.Output + wAnalysis*f.Analysis
	return 1 / (1 + math.Exp(-z))
}

// Cue categories of the phrase table.
const (
	cueNone uint8 = iota
	cueSteps
	cueFirst
	cueThen
	cueConstraint
	cueMath
	cueOutput
	cueAnalysis
	cueUnit // "words", "pages": output size when preceded by a number
	numCues
)

var cuePhrases = map[uint8][]string{
	cueSteps: {"step by step", "walk me through", "walk through", "break down", "break it down",
		"steps", "finally", "afterwards", "phased", "roadmap", "in order", "one by one", "stage by stage"},
	cueFirst: {"first", "firstly"},
	cueThen:  {"then", "next", "secondly"},
	cueConstraint: {"must", "must not", "at least", "at most", "without", "exactly", "no more than",
		"no less than", "only", "ensure", "make sure", "do not", "don't", "never", "should not",
		"shouldn't", "required", "requirement", "requirements", "constraint", "constraints",
		"within", "unless", "except", "mandatory", "strictly", "limit", "guarantee"},
	cueMath: {"prove", "proof", "derive", "derivation", "integral", "integrate", "derivative",
		"differentiate", "equation", "equations", "theorem", "lemma", "matrix", "eigenvalue",
		"eigenvalues", "probability", "expected value", "variance", "minimize", "maximize",
		"converge", "convergence", "polynomial", "induction"},
	cueOutput: {"detailed", "comprehensive", "in depth", "thorough", "thoroughly", "exhaustive",
		"extensive", "essay", "report", "long form", "elaborate", "in detail", "full", "whitepaper"},
	cueAnalysis: {"analyze", "analyse", "analysis", "compare", "comparison", "evaluate", "assess",
		"trade off", "tradeoff", "trade offs", "tradeoffs", "pros and cons", "why", "justify",
		"reasoning", "implications", "design", "architecture", "strategy", "optimize", "optimise",
		"debug", "root cause", "diagnose", "critique", "recommend", "decide", "consequences", "risks"},
	cueUnit: {"words", "pages", "paragraphs", "sections", "slides", "chapters", "lines"},
}

// Cue phrases are matched exactly, word by word. Every word that occurs in
// a phrase gets an id (cueTables.wordID); a word of the text is looked up
// by its lowercased bytes, packed into two integers, and only when its
// first two letters and its length fit some cue word (cueTables.maybe, one
// load that rejects most words). The phrases ending in a word are looked
// up by the ids of it and the one or two words before (cueTables.phrase).

// cueWordMax bounds the words that are looked up: longer ones are in no
// phrase (the longest cue word, "differentiate", has 13 letters).
const cueWordMax = 16

// cueKey is a word of at most cueWordMax bytes, lowercased and packed
// little-endian, zero-padded (a struct, not an array, so that it lives in
// registers).
type cueKey struct{ lo, hi uint64 }

// cueInfo is what a word id means on its own.
type cueInfo struct {
	cue  uint8 // single-word cue, cueNone if none
	tail bool  // ends some multi-word phrase
}

type cuePhrase struct {
	key uint32 // ids of the words, first word in the highest byte used
	cue uint8  // cueNone: empty slot
}

const (
	cueWordBits   = 12
	cuePhraseBits = 8
)

type cueTables struct {
	// first[c0][c1] has bit n-1 set when some cue word of n bytes starts
	// with c0 c1 (each folded to five bits).
	first [32][32]uint16
	// ids and keys are an open-addressing table of the cue words, sparse
	// (about 3% of slots used) so that probes are short.
	ids     [1 << cueWordBits]uint8 // 0: empty slot
	keys    [1 << cueWordBits]cueKey
	info    [256]cueInfo
	phrases [1 << cuePhraseBits]cuePhrase
	// ids of "words" and "lines", which need a larger number before them
	// to mean output size than "pages" or "sections".
	idWords, idLines uint8
}

var cues = buildCueTables()

func buildCueTables() *cueTables {
	t := &cueTables{}
	nextID := 1
	id := func(w string) uint8 {
		k, ok := packWord([]byte(w))
		if !ok {
			panic("complexity: cue word too long: " + w)
		}
		if got := t.wordID(k); got != 0 {
			return got
		}
		if nextID > 255 {
			panic("complexity: too many cue words")
		}
		if len(w) < 2 {
			panic("complexity: one-letter cue word: " + w)
		}
		t.insertWord(k, uint8(nextID))
		t.first[w[0]&31][w[1]&31] |= 1 << (len(w) - 1)
		nextID++
		return uint8(nextID - 1)
	}
	for cue := cueNone + 1; cue < numCues; cue++ {
		for _, p := range cuePhrases[cue] {
			words := strings.Fields(p)
			var key uint32
			for _, w := range words {
				key = key<<8 | uint32(id(w))
			}
			last := id(words[len(words)-1])
			switch len(words) {
			case 1:
				t.info[last].cue = cue
			case 2, 3:
				t.info[last].tail = true
				t.insertPhrase(key, cue)
			default:
				panic("complexity: cue phrase longer than three words: " + p)
			}
		}
	}
	t.idWords, t.idLines = id("words"), id("lines")
	return t
}

// packWord packs a word of ASCII letters and apostrophes, lowercased; ok
// is false when it is longer than cueWordMax.
func packWord(w []byte) (k cueKey, ok bool) {
	if len(w) > cueWordMax {
		return k, false
	}
	for i, c := range w {
		if i < 8 {
			k.lo |= uint64(c|0x20) << (8 * i)
		} else {
			k.hi |= uint64(c|0x20) << (8 * (i - 8))
		}
	}
	return k, true
}

func cueSlot(k cueKey) uint64 {
	return ((k.lo*mixMul ^ k.hi) * fnvPrime) >> (64 - cueWordBits)
}

func (t *cueTables) insertWord(k cueKey, id uint8) {
	for i := cueSlot(k); ; i = (i + 1) & (1<<cueWordBits - 1) {
		if t.ids[i] == 0 {
			t.ids[i], t.keys[i] = id, k
			return
		}
	}
}

// maybe reports whether a word of n (2..cueWordMax) bytes starting with
// c0 c1 may be a cue word.
func (t *cueTables) maybe(c0, c1 byte, n int) bool {
	return t.first[c0&31][c1&31]>>(n-1)&1 != 0
}

// wordID returns the id of the packed word k, 0 when it is in no phrase.
func (t *cueTables) wordID(k cueKey) uint8 {
	for i := cueSlot(k); ; i = (i + 1) & (1<<cueWordBits - 1) {
		id := t.ids[i]
		if id == 0 || t.keys[i] == k {
			return id
		}
	}
}

func phraseSlot(key uint32) uint32 { return (key * 0x9e3779b1) >> (32 - cuePhraseBits) }

func (t *cueTables) insertPhrase(key uint32, cue uint8) {
	for i := phraseSlot(key); ; i = (i + 1) & (1<<cuePhraseBits - 1) {
		if t.phrases[i].cue == cueNone || t.phrases[i].key == key {
			t.phrases[i] = cuePhrase{key: key, cue: cue}
			return
		}
	}
}

func (t *cueTables) phrase(key uint32) uint8 {
	for i := phraseSlot(key); ; i = (i + 1) & (1<<cuePhraseBits - 1) {
		e := &t.phrases[i]
		if e.cue == cueNone || e.key == key {
			return e.cue
		}
	}
}

// complexityScan holds the raw counts of one pass.
type complexityScan struct {
	cue                                   [numCues]int
	nonSpace, questions, numbered, bullet int
	fences, codeLines, mathMarks          int
}

// historyWeight is how much the cues and length of earlier turns count
// next to the last user turn. The system prompt does not count at all: it
// is the same for every request of an application, usually long and full
// of "must"/"never", and would push all of them up alike.
const historyWeight = 0.5

// ComplexityOf returns the complexity score of an extracted request and the
// features it came from.
//
// Each message is scanned on its own (no cue phrase spans two messages)
// and the counts are combined: the ask is the last user turn, or every
// message when there is none; the history is the turns after the system
// prompts, which do not count (see historyWeight).
func ComplexityOf(x *Extraction) (float64, ComplexityFeatures) {
	var ask, hist, m complexityScan
	for i, sg := range x.segs {
		m = complexityScan{}
		m.scan(x.Text[sg.start:sg.end])
		combineComplexity(x, i, sg, &m, &ask, &hist)
	}
	f := features(x, &ask, &hist)
	return f.Score(), f
}

// combineComplexity adds the scan m of message i (x.segs[i]) to the ask or
// the history.
func combineComplexity(x *Extraction, i int, sg segment, m, ask, hist *complexityScan) {
	switch {
	case x.LastUserLen == 0:
		ask.add(m) // no user turn: everything is the ask
	case i == 0:
		*ask = *m // segs[0] is the last user turn, Text[:LastUserLen]
	case sg.start >= x.SystemEnd:
		hist.add(m)
	}
}

// add adds the counts of o to s.
func (s *complexityScan) add(o *complexityScan) {
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

func features(x *Extraction, ask, hist *complexityScan) ComplexityFeatures {
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
	n := func(a, h int) float64 { return float64(a) + historyWeight*float64(h) }
	var f ComplexityFeatures
	chars := askChars + historyWeight*histChars
	f.Length = min(1, math.Log2(1+chars/100)/math.Log2(1+lengthFullChars/100))
	f.Questions = capped(n(ask.questions, hist.questions), capQuestions)
	f.Steps = capped(n(ask.steps(), hist.steps()), capSteps)
	f.Code = capped(n(ask.code(), hist.code()), capCodeLines)
	f.Math = capped(n(ask.cue[cueMath]+ask.mathMarks, hist.cue[cueMath]+hist.mathMarks), capMath)
	f.Constraints = capped(n(ask.constraints(), hist.constraints()), 2*capConstraints)
	if turns := x.Messages - x.SystemMessages; turns > 1 {
		f.Depth = min(1, math.Log2(float64(turns))/math.Log2(depthFullMsgs))
	}
	f.Output = capped(n(ask.cue[cueOutput]+ask.cue[cueUnit], hist.cue[cueOutput]+hist.cue[cueUnit]), capOutput)
	f.Analysis = capped(n(ask.cue[cueAnalysis], hist.cue[cueAnalysis]), capAnalysis)
	return f
}

func (s *complexityScan) steps() int {
	n := s.cue[cueSteps] + s.numbered
	if s.cue[cueFirst] > 0 && s.cue[cueThen] > 0 {
		n += 2
	}
	return n
}

func (s *complexityScan) code() int {
	if s.fences >= 2 {
		return s.codeLines + capCodeLines
	}
	return s.codeLines
}

func (s *complexityScan) constraints() int { return s.cue[cueConstraint]*2 + s.bullet }

func capped(n float64, c int) float64 { return min(n, float64(c)) / float64(c) }

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// wordID returns the cue word id of text[i:j] (letters and apostrophes,
// at most cueWordMax of them), 0 when it is in no phrase.
func wordID(text []byte, i, j int) uint8 {
	n := j - i
	var k cueKey
	if i+cueWordMax <= len(text) {
		const lower = 0x2020202020202020
		k.lo = (binary.LittleEndian.Uint64(text[i:]) | lower) & (^uint64(0) >> (64 - 8*uint(min(n, 8))))
		k.hi = (binary.LittleEndian.Uint64(text[i+8:]) | lower) & (^uint64(0) >> (64 - 8*uint(max(n, 8)-8)))
	} else {
		k, _ = packWord(text[i:j])
	}
	return cues.wordID(k)
}

// Byte classes of the complexity scan (letters are tested first).
const (
	cxOther     uint8 = iota // punctuation: ends a phrase (except '-')
	cxDigit                  // starts a number
	cxNewline                // ends a line
	cxBlank                  // space, tab, CR
	cxQuestion               // '?'
	cxBackslash              // LaTeX command when a letter follows
	cxCaret                  // exponent between operands
	cxHigh                   // first byte of a multi-byte rune (or invalid)
	cxLetter                 // ASCII letter
)

var cxClass = func() (t [256]uint8) {
	for c := range t {
		b := byte(c)
		switch {
		case isASCIILetter(b):
			t[c] = cxLetter
		case b >= '0' && b <= '9':
			t[c] = cxDigit
		case b == '\n':
			t[c] = cxNewline
		case b == ' ' || b == '\t' || b == '\r':
			t[c] = cxBlank
		case b == '?':
			t[c] = cxQuestion
		case b == '\\':
			t[c] = cxBackslash
		case b == '^':
			t[c] = cxCaret
		case b >= utf8.RuneSelf:
			t[c] = cxHigh
		}
	}
	return t
}()

// scan counts the cues of text in one pass over its tokens: words (runs
// of letters, apostrophes between letters), numbers (digits, commas
// between digits), non-ASCII runes and single other bytes; blanks
// separate tokens. A word is only looked up in the cue table when its
// first two letters and length fit some cue word.
func (s *complexityScan) scan(text []byte) {
	var prev1, prev2 uint8 // cue word ids of the previous two words (0: none)
	lastNum := -1          // value of the number token just before, -1 if none
	lineStart := true
	lineLast := byte(0) // last non-space byte of the current line
	// Counters updated per token live in registers, not in *s.
	nonSpace, questions := 0, 0
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
		cls := cxClass[c]
		if cls == cxLetter {
			j := i + 1
			for j < len(text) {
				if cxClass[text[j]] == cxLetter {
					j++
				} else if text[j] == '\'' && j+1 < len(text) && isASCIILetter(text[j+1]) {
					j += 2
				} else {
					break
				}
			}
			var w uint8
			if n := j - i; n > 1 && n <= cueWordMax && cues.maybe(c, text[i+1], n) {
				if w = wordID(text, i, j); w != 0 {
					s.word(w, prev1, prev2, lastNum)
				}
			}
			prev2, prev1 = prev1, w
			lastNum = -1
			nonSpace += j - i
			lineLast = text[j-1]
			i = j
			continue
		}
		if cls == cxBlank {
			i++
			continue
		}
		switch cls {
		case cxDigit:
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
			nonSpace += j - i
			lineLast = text[j-1]
			i = j
			continue
		case cxNewline:
			if lineLast == ';' || lineLast == '{' || lineLast == '}' || lineLast == ')' && i > 0 && text[i-1] == ')' {
				s.codeLines++
			}
			lineStart, lineLast = true, 0
			i++
			continue
		case cxQuestion:
			questions++
		case cxBackslash:
			if i+1 < len(text) && isASCIILetter(text[i+1]) {
				s.mathMarks++ // \frac, \int, \sum …
			}
		case cxCaret:
			if i > 0 && i+1 < len(text) && isAlnum(text[i-1]) && (isAlnum(text[i+1]) || text[i+1] == '{' || text[i+1] == '(') {
				s.mathMarks++
			}
		case cxHigh:
			r, n := utf8.DecodeRune(text[i:])
			if isMathRune(r) {
				s.mathMarks++
			}
			nonSpace += n
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
		nonSpace++
		lineLast = c
		i++
	}
	if lineLast == ';' || lineLast == '{' || lineLast == '}' {
		s.codeLines++
	}
	s.nonSpace += nonSpace
	s.questions += questions
}

// word records the cues ended by the cue word w (an id, not 0) after the
// words prev1 and prev2 (ids, 0: none or not a cue word).
func (s *complexityScan) word(w, prev1, prev2 uint8, lastNum int) {
	info := cues.info[w]
	if cue := info.cue; cue != cueNone {
		if cue == cueUnit {
			if lastNum >= 300 || lastNum >= 3 && w != cues.idWords && w != cues.idLines {
				s.cue[cueUnit]++ // "in 2000 words", "5 pages"
			}
		} else {
			s.cue[cue]++
		}
	}
	if !info.tail || prev1 == 0 {
		return
	}
	if cue := cues.phrase(uint32(prev1)<<8 | uint32(w)); cue != cueNone {
		s.cue[cue]++
	}
	if prev2 == 0 {
		return
	}
	if cue := cues.phrase(uint32(prev2)<<16 | uint32(prev1)<<8 | uint32(w)); cue != cueNone {
		s.cue[cue]++
	}
}

func isAlnum(c byte) bool { return isASCIILetter(c) || c >= '0' && c <= '9' || c == ')' }

func isMathRune(r rune) bool {
	switch r {
	case '∑', '∫', '√', '≤', '≥', '≠', '∞', '≈', 'π', '∂', '∀', '∃', '∈', '⊂', '×', '÷', '±', 'Σ', 'Δ', 'λ', 'θ':
		return true
	}
	return false
}

// listItem counts a numbered ("1.", "2)") or bulleted ("- ", "* ") line.
func (s *complexityScan) listItem(line []byte) {
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
