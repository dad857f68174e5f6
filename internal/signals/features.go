package signals

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Feature extraction for the intent classifier. A text becomes a sparse
// vector of hashed features in three groups plus a few dense hand-made
// features:
//
//   - word unigrams and word bigrams over tokens of the normalised text
//     (letters/digits/_/' runs, and runs of one punctuation character);
//   - character 3- and 4-grams over the normalised text, spaces and
//     punctuation included, which carry morphology ("summar", "translat"),
//     misspellings and code syntax ("```", "();", "=> ");
//   - hand features: code fence, symbol density, digit density, question
//     mark, length, line count, arithmetic, quoting.
//
// Normalisation lowercases (Unicode-aware), maps every decimal digit to '0'
// so that numbers generalise, and collapses whitespace runs to one space.
//
// Hash features are indexed modulo 2^hashBits. Every group has a value
// (featureWeights) and the vector is scaled to unit L2 norm counting each
// emitted feature once, so long and short texts score on the same scale.

const (
	hashBits = 15
	hashDim  = 1 << hashBits
	// numHand dense features follow the hashed ones.
	numHand = 8
	// numDims is the full feature dimension.
	numDims = hashDim + numHand

	// Only a window of a long text is featurised: asks put the
	// instruction at the start or the end ("Summarize the following: …",
	// "… what does this function do?"); the middle is payload.
	windowHead = 640
	windowTail = 256
	// Context (system prompt, earlier turns) contributes the words of at
	// most this many bytes, at contextScale of the weight of the last user
	// turn.
	contextBytes = 256
	contextScale = 0.35
)

// Feature groups.
const (
	groupUni = iota
	groupBi
	groupChar
	numGroups
)

// featureWeights is the value of one feature of each group before
// normalisation (word unigram, word bigram, char n-gram).
var featureWeights = [numGroups]float32{1.0, 0.8, 0.4}

// Per-group hash seeds keep a word "the" and a char gram "the" apart.
var groupSeeds = [numGroups]uint64{0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	mixMul    = 0x9e3779b97f4a7c15
)

func hashIndex(h uint64) uint32 { return uint32((h * mixMul) >> (64 - hashBits)) }

// featGroup closes a run of indices in featBuf.idx.
type featGroup struct {
	end int     // idx[prevEnd:end]
	v   float32 // value of each feature in the run
}

// featBuf holds the features of one text; reused across calls.
type featBuf struct {
	norm   []byte
	idx    []uint32
	groups []featGroup
	hand   [numHand]float32
	// tokens of the current segment (hash of each token)
	toks []uint64
}

func (f *featBuf) reset() {
	f.idx = f.idx[:0]
	f.groups = f.groups[:0]
	f.hand = [numHand]float32{}
}

// scaleFactor is 1/L2 norm of the hashed part, each feature counted once.
func (f *featBuf) scaleFactor() float32 {
	var ss float64
	start := 0
	for _, g := range f.groups {
		n := g.end - start
		ss += float64(n) * float64(g.v) * float64(g.v)
		start = g.end
	}
	if ss == 0 {
		return 0
	}
	return float32(1 / math.Sqrt(ss))
}

// add featurises text with weight scale (1 for the ask itself,
// contextScale for context). The ask gets hand and character features;
// context only word features, which carry its topic at a third of the cost.
func (f *featBuf) add(text []byte, scale float32, ask bool) {
	if len(text) == 0 {
		return
	}
	f.norm = f.norm[:0]
	f.norm = append(f.norm, ' ')
	if len(text) > windowHead+windowTail {
		f.norm = normalize(f.norm, text[:runeCut(text, windowHead)])
		f.norm = append(f.norm, ' ')
		f.norm = normalize(f.norm, text[runeCut(text, len(text)-windowTail):])
	} else {
		f.norm = normalize(f.norm, text)
	}
	if f.norm[len(f.norm)-1] != ' ' {
		f.norm = append(f.norm, ' ')
	}
	f.words(scale)
	if ask {
		handFeatures(&f.hand, text)
		f.chars(scale)
	}
}

// runeCut returns the largest rune boundary <= n.
func runeCut(b []byte, n int) int {
	if n >= len(b) {
		return len(b)
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return n
}

// normalize appends the normal form of text to dst.
func normalize(dst, text []byte) []byte {
	space := len(dst) > 0 && dst[len(dst)-1] == ' '
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= '0' && c <= '9':
				c = '0'
			case c <= ' ' || c == 0x7f:
				if !space {
					dst = append(dst, ' ')
					space = true
				}
				continue
			}
			dst = append(dst, c)
			space = false
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		i += n
		switch {
		case unicode.IsSpace(r):
			if !space {
				dst = append(dst, ' ')
				space = true
			}
			continue
		case unicode.IsDigit(r):
			r = '0'
		default:
			r = unicode.ToLower(r)
		}
		dst = utf8.AppendRune(dst, r)
		space = false
	}
	return dst
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c == '0' || c == '_' || c == '\'' || c >= utf8.RuneSelf
}

// words emits unigram and bigram features of the tokens of f.norm.
func (f *featBuf) words(scale float32) {
	s := f.norm
	f.toks = f.toks[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' {
			i++
			continue
		}
		h := uint64(fnvOffset)
		j := i
		if isWordByte(c) {
			for j < len(s) && isWordByte(s[j]) {
				h = (h ^ uint64(s[j])) * fnvPrime
				j++
			}
		} else {
			// A run of one punctuation character, capped at 3 ("```", "==").
			for j < len(s) && s[j] == c && j-i < 3 {
				h = (h ^ uint64(s[j])) * fnvPrime
				j++
			}
			for j < len(s) && s[j] == c {
				j++
			}
		}
		f.toks = append(f.toks, h)
		i = j
	}
	for _, h := range f.toks {
		f.idx = append(f.idx, hashIndex(h^groupSeeds[groupUni]))
	}
	f.groups = append(f.groups, featGroup{end: len(f.idx), v: featureWeights[groupUni] * scale})
	for k := 1; k < len(f.toks); k++ {
		h := (f.toks[k-1]*fnvPrime ^ f.toks[k]) ^ groupSeeds[groupBi]
		f.idx = append(f.idx, hashIndex(h))
	}
	f.groups = append(f.groups, featGroup{end: len(f.idx), v: featureWeights[groupBi] * scale})
}

// chars emits character 3- and 4-gram features of f.norm.
func (f *featBuf) chars(scale float32) {
	s := f.norm
	seed := groupSeeds[groupChar]
	for i := 0; i+3 <= len(s); i++ {
		h := uint64(fnvOffset) ^ seed
		h = (h ^ uint64(s[i])) * fnvPrime
		h = (h ^ uint64(s[i+1])) * fnvPrime
		h = (h ^ uint64(s[i+2])) * fnvPrime
		f.idx = append(f.idx, hashIndex(h))
		if i+4 <= len(s) {
			h = (h ^ uint64(s[i+3])) * fnvPrime
			f.idx = append(f.idx, hashIndex(h))
		}
	}
	f.groups = append(f.groups, featGroup{end: len(f.idx), v: featureWeights[groupChar] * scale})
}

// handFeatures fills the dense features from the raw text (not normalised:
// case and digits matter here). Each is in [0,1].
func handFeatures(h *[numHand]float32, text []byte) {
	n := len(text)
	if n > windowHead+windowTail {
		n = windowHead + windowTail // the head is enough for densities
	}
	var symbols, digits, lines, quotes int
	var question, arith bool
	for i := 0; i < n; i++ {
		c := text[i]
		switch c {
		case '{', '}', '(', ')', ';', '=', '<', '>', '[', ']', '|', '&', '$', '#', '%':
			symbols++
		case '\n':
			lines++
		case '?':
			question = true
		case '"', '\'':
			quotes++
		case '+', '-', '*', '/', '^':
			if i > 0 && i+1 < n && isDigitOrSpace(text[i-1]) && isDigitOrSpace(text[i+1]) && nearDigit(text, i, n) {
				arith = true
			}
		}
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if bytesContains(text, "```") {
		h[0] = 1
	}
	fn := float32(max(n, 1))
	h[1] = min(1, 8*float32(symbols)/fn)
	h[2] = min(1, 4*float32(digits)/fn)
	if question {
		h[3] = 1
	}
	h[4] = min(1, float32(math.Log2(1+float64(len(text))))/13)
	h[5] = min(1, float32(lines)/20)
	if arith {
		h[6] = 1
	}
	h[7] = min(1, float32(quotes)/8)
}

func isDigitOrSpace(c byte) bool { return c >= '0' && c <= '9' || c == ' ' || c == '(' || c == ')' }

// nearDigit reports a digit within two bytes on both sides of text[i].
func nearDigit(text []byte, i, n int) bool {
	left, right := false, false
	for k := max(0, i-2); k < i; k++ {
		left = left || text[k] >= '0' && text[k] <= '9'
	}
	for k := i + 1; k < min(n, i+3); k++ {
		right = right || text[k] >= '0' && text[k] <= '9'
	}
	return left && right
}

func bytesContains(b []byte, s string) bool { return strings.Contains(bytesString(b), s) }
