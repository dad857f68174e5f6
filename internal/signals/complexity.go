package signals

import (
	"math"
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
// One pass over the classifier text finds everything: words are hashed
// (ASCII-lowercased, apostrophes kept, everything else splits) and looked
// up, together with the bigram and trigram they end, in a small
// open-addressing table of cue phrases. No regular expressions.

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

// cueTable is an open-addressing hash set of word-sequence hashes.
type cueTable struct {
	keys []uint64
	cues []uint8
	mask uint64
}

const cueTableBits = 10

var cues = buildCueTable()

// cueTail marks a word that ends some multi-word phrase: only after such a
// word are the bigram and trigram looked up.
const cueTail uint8 = 0x80

func buildCueTable() *cueTable {
	t := &cueTable{keys: make([]uint64, 1<<cueTableBits), cues: make([]uint8, 1<<cueTableBits), mask: 1<<cueTableBits - 1}
	for cue, phrases := range cuePhrases {
		for _, p := range phrases {
			var h, last uint64
			n := 0
			for i := 0; i < len(p); {
				j := i
				for j < len(p) && p[j] != ' ' {
					j++
				}
				last = wordHash(p[i:j])
				h = phraseStep(h, n, last)
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

func wordHash(w string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint64(w[i])) * fnvPrime
	}
	return h | 1 // never 0: 0 marks an empty slot
}

// phraseStep extends the hash of an n-word phrase by one word.
func phraseStep(h uint64, n int, w uint64) uint64 {
	if n == 0 {
		return w
	}
	return ((h*mixMul)^w)*fnvPrime | 1
}

// insert adds h with cue (0 keeps an existing cue), or marks it as a
// phrase tail.
func (t *cueTable) insert(h uint64, cue uint8, tail bool) {
	for i := (h * mixMul) >> (64 - cueTableBits); ; i = (i + 1) & t.mask {
		if t.keys[i] == 0 || t.keys[i] == h {
			t.keys[i] = h
			if cue != 0 {
				t.cues[i] = t.cues[i]&cueTail | cue
			}
			if tail {
				t.cues[i] |= cueTail
			}
			return
		}
	}
}

func (t *cueTable) lookup(h uint64) uint8 {
	for i := (h * mixMul) >> (64 - cueTableBits); ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case h:
			return t.cues[i]
		case 0:
			return cueNone
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
func ComplexityOf(x *Extraction) (float64, ComplexityFeatures) {
	var ask, hist complexityScan
	if x.LastUserLen == 0 {
		ask.scan(x.Text) // no user turn: everything is the ask
	} else {
		ask.scan(x.Text[:x.LastUserLen])
		hist.scan(x.Text[min(x.SystemEnd, len(x.Text)):])
	}
	f := features(x, &ask, &hist)
	return f.Score(), f
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

// scan counts the cues of text in one pass.
func (s *complexityScan) scan(text []byte) {
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
		case isASCIILetter(c):
			h := uint64(fnvOffset)
			j := i
			for j < len(text) && (isASCIILetter(text[j]) || text[j] == '\'' && j+1 < len(text) && isASCIILetter(text[j+1])) {
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
			if i+1 < len(text) && isASCIILetter(text[i+1]) {
				s.mathMarks++ // \frac, \int, \sum …
			}
		case c == '^':
			if i > 0 && i+1 < len(text) && isAlnum(text[i-1]) && (isAlnum(text[i+1]) || text[i+1] == '{' || text[i+1] == '(') {
				s.mathMarks++
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(text[i:])
			if isMathRune(r) {
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

func isAlnum(c byte) bool { return isASCIILetter(c) || c >= '0' && c <= '9' || c == ')' }

func isMathRune(r rune) bool {
	switch r {
	case '∑', '∫', '√', '≤', '≥', '≠', '∞', '≈', 'π', '∂', '∀', '∃', '∈', '⊂', '×', '÷', '±', 'Σ', 'Δ', 'λ', 'θ':
		return true
	}
	return false
}

// word records the cues ended by word w.
func (s *complexityScan) word(w, prev1, prev2 uint64, lastNum int) {
	e := cues.lookup(w)
	if cue := e &^ cueTail; cue != cueNone {
		if cue == cueUnit {
			if lastNum >= 300 || lastNum >= 3 && w != cueWordsHash && w != cueLinesHash {
				s.cue[cueUnit]++ // "in 2000 words", "5 pages"
			}
		} else {
			s.cue[cue]++
		}
	}
	if e&cueTail == 0 || prev1 == 0 {
		return
	}
	h2 := phraseStep(prev1, 1, w)
	if cue := cues.lookup(h2); cue != cueNone {
		s.cue[cue]++
	}
	if prev2 == 0 {
		return
	}
	if cue := cues.lookup(phraseStep(phraseStep(prev2, 1, prev1), 2, w)); cue != cueNone {
		s.cue[cue]++
	}
}

var (
	cueWordsHash = wordHash("words")
	cueLinesHash = wordHash("lines")
)

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
