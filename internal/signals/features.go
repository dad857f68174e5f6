package signals

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
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
//   - character 3-grams over the normalised text, spaces and punctuation
//     included, which carry morphology ("sum", "mar", "ize"), word edges
//     (" tr", "ate "), misspellings and code syntax ("```", "();", "=> ");
//   - hand features: code fence, symbol density, digit density, question
//     mark, length, line count, arithmetic, quoting.
//
// Normalisation lowercases (Unicode-aware), maps every decimal digit to '0'
// so that numbers generalise, and collapses whitespace runs to one space.
//
// Hash features are indexed modulo 2^hashBits. Every group has a value
// (featureWeights) and the vector is scaled to unit L2 norm counting each
// emitted feature once, so long and short texts score on the same scale.
//
// A request's cost is reading one weight row per feature, a cache miss
// each when the table does not stay in cache between requests, so the
// feature set is kept small: one char n-gram per byte (3-grams alone were
// as accurate as 3- and 4-grams together in cross-validation on the
// shipped examples) and 2^14 rows (256 KiB quantised, a quarter of the
// former 2^15 rows of 3- and 4-grams; 2^13 rows cost a point of
// cross-validated accuracy).

const (
	hashBits = 14
	hashDim  = 1 << hashBits
	// numDims is the full feature dimension.
	numDims = hashDim + numHand
	// numHand dense features follow the hashed ones.
	numHand = 8

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
var featureWeights = [numGroups]float32{1.0, 0.8, 0.55}

// Per-group hash seeds keep a word "the" and a char gram "the" apart.
var groupSeeds = [numGroups]uint64{0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	mixMul    = 0x9e3779b97f4a7c15
)

func hashIndex(h uint64) uint32 { return uint32((h * mixMul) >> (64 - hashBits)) }

// normPad zero bytes follow the normalised text in featBuf.norm, so that
// tokens and grams are read with 8-byte loads near the end too.
const normPad = 8

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
	n := len(f.norm)
	f.norm = append(f.norm, make([]byte, normPad)...)
	f.words(f.norm, n, scale)
	if ask {
		handFeatures(&f.hand, text)
		f.chars(f.norm, n, scale)
	}
	f.norm = f.norm[:n]
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

// normASCII is the normal form of each ASCII byte: letters lowercased,
// digits '0', whitespace and control characters ' '.
var normASCII = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		switch b := byte(c); {
		case b >= 'A' && b <= 'Z':
			t[c] = b + 'a' - 'A'
		case b >= '0' && b <= '9':
			t[c] = '0'
		case b <= ' ' || b == 0x7f:
			t[c] = ' '
		default:
			t[c] = b
		}
	}
	return t
}()

// normalize appends the normal form of text to dst.
func normalize(dst, text []byte) []byte {
	space := len(dst) > 0 && dst[len(dst)-1] == ' '
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			// An ASCII run, written by index: it needs at most one byte
			// per byte.
			dst = slices.Grow(dst, len(text)-i)
			out := dst[len(dst):cap(dst)]
			k := 0
		run:
			for i < len(text) {
				// Eight bytes at a time while they are ASCII and no
				// whitespace run in them needs collapsing.
				for i+8 <= len(text) && k+8 <= len(out) {
					w := binary.LittleEndian.Uint64(text[i:])
					if w&swarHigh != 0 {
						break
					}
					upper := swarRange(w, 'A', 'Z')
					digit := swarRange(w, '0', '9')
					sp := ^(w+(0x80-0x21)*swarOnes)&swarHigh | ^((w^0x7f7f7f7f7f7f7f7f)+0x7f7f7f7f7f7f7f7f)&swarHigh // <= ' ', DEL
					var prev uint64
					if space {
						prev = 0x80
					}
					if sp&(sp<<8|prev) != 0 {
						break
					}
					n := w + upper>>2 // +0x20
					dm := (digit >> 7) * 0xff
					sm := (sp >> 7) * 0xff
					n = n&^(dm|sm) | '0'*swarOnes&dm | ' '*swarOnes&sm
					binary.LittleEndian.PutUint64(out[k:], n)
					i += 8
					k += 8
					space = sp>>63 != 0
				}
				// Then up to eight bytes one at a time.
				for end := min(i+8, len(text)); i < end; i++ {
					c := text[i]
					if c >= utf8.RuneSelf {
						break run
					}
					n := normASCII[c]
					sp := n == ' '
					out[k] = n
					if !sp || !space {
						k++
					}
					space = sp
				}
			}
			dst = dst[:len(dst)+k]
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

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// swarRange has the high bit set in each byte of w (ASCII only) that is
// in [lo, hi]. No byte carries into the next: each is at most 0x7f before
// an addition of at most 0x80.
func swarRange(w uint64, lo, hi byte) uint64 {
	return (w + uint64(0x80-lo)*swarOnes) &^ (w + uint64(0x80-hi-1)*swarOnes) & swarHigh
}

// wordByte marks the bytes of word tokens in normalised text.
var wordByte = func() (t [256]bool) {
	for c := range t {
		b := byte(c)
		t[c] = b >= 'a' && b <= 'z' || b == '0' || b == '_' || b == '\'' || b >= utf8.RuneSelf
	}
	return t
}()

// tokenMul mixes token bytes into a token hash.
const tokenMul = 0xbf58476d1ce4e5b9

// tokenHash hashes buf[i:j] (1 <= j-i) eight bytes at a time; buf must
// have normPad readable bytes after j.
func tokenHash(buf []byte, i, j int) uint64 {
	h := uint64(j-i) * mixMul
	for ; j-i > 8; i += 8 {
		h = (h ^ binary.LittleEndian.Uint64(buf[i:])) * tokenMul
		h ^= h >> 31
	}
	v := binary.LittleEndian.Uint64(buf[i:]) & (^uint64(0) >> (64 - 8*uint(j-i)))
	h = (h ^ v) * tokenMul
	return h ^ h>>32
}

// words emits unigram and bigram features of the tokens of buf[:n].
func (f *featBuf) words(buf []byte, n int, scale float32) {
	s := buf[:n]
	f.toks = f.toks[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' {
			i++
			continue
		}
		j := i + 1
		var h uint64
		if wordByte[c] {
			for j < len(s) && wordByte[s[j]] {
				j++
			}
			h = tokenHash(buf, i, j)
		} else {
			// A run of one punctuation character, capped at 3 ("```", "==").
			for j < len(s) && s[j] == c {
				j++
			}
			h = tokenHash(buf, i, min(j, i+3))
		}
		f.toks = append(f.toks, h)
		i = j
	}
	f.idx = slices.Grow(f.idx, 2*len(f.toks))
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

// chars emits the character 3-gram features of buf[:n]: a gram is the
// little-endian load of its three bytes, mixed by hashIndex's
// multiplication.
func (f *featBuf) chars(buf []byte, n int, scale float32) {
	if m := n - 2; m > 0 {
		f.idx = slices.Grow(f.idx, m)
		start := len(f.idx)
		out := f.idx[start : start+m]
		seed := groupSeeds[groupChar]
		buf = buf[:m+3]
		for i := range out {
			v := binary.LittleEndian.Uint32(buf[i:]) & 0xffffff
			out[i] = hashIndex(uint64(v) ^ seed)
		}
		f.idx = f.idx[:start+m]
	}
	f.groups = append(f.groups, featGroup{end: len(f.idx), v: featureWeights[groupChar] * scale})
}

// handCount packs, for each byte, its contribution to six 10-bit
// counters (a window of at most 896 bytes cannot overflow them): one table
// load and one addition per byte.
var handCount = func() (t [256]uint64) {
	for _, c := range []byte("{}();=<>[]|&$#%") {
		t[c] = 1 << hcSymbols
	}
	t['\n'] = 1 << hcLines
	t['"'], t['\''] = 1<<hcQuotes, 1<<hcQuotes
	for c := '0'; c <= '9'; c++ {
		t[c] = 1 << hcDigits
	}
	t['?'] = 1 << hcQuestions
	for _, c := range []byte("+-*/^") {
		t[c] = 1 << hcArith
	}
	return t
}()

// Counter offsets in handCount.
const (
	hcSymbols   = 0
	hcLines     = 10
	hcQuotes    = 20
	hcDigits    = 30
	hcQuestions = 40
	hcArith     = 50
	hcMask      = 1<<10 - 1
)

// handFeatures fills the dense features from the raw text (not normalised:
// case and digits matter here). Each is in [0,1].
func handFeatures(h *[numHand]float32, text []byte) {
	n := min(len(text), windowHead+windowTail) // the head is enough for densities
	var acc uint64
	for _, c := range text[:n] {
		acc += handCount[c]
	}
	symbols := int(acc >> hcSymbols & hcMask)
	lines := int(acc >> hcLines & hcMask)
	quotes := int(acc >> hcQuotes & hcMask)
	digits := int(acc >> hcDigits & hcMask)
	// Arithmetic needs an operator and digits; only then look closer.
	arith := acc>>hcArith&hcMask != 0 && digits != 0 && hasArith(text[:n])
	if bytesContains(text, "```") {
		h[0] = 1
	}
	fn := float32(max(n, 1))
	h[1] = min(1, 8*float32(symbols)/fn)
	h[2] = min(1, 4*float32(digits)/fn)
	if acc>>hcQuestions&hcMask != 0 {
		h[3] = 1
	}
	h[4] = min(1, float32(math.Log2(1+float64(len(text))))/13)
	h[5] = min(1, float32(lines)/20)
	if arith {
		h[6] = 1
	}
	h[7] = min(1, float32(quotes)/8)
}

// hasArith reports an arithmetic operator between digits ("3 * 4",
// "(2+2)"). Operators are found with bytes.IndexByte: hyphens are common,
// arithmetic is not.
func hasArith(text []byte) bool {
	for _, op := range [...]byte{'+', '-', '*', '/', '^'} {
		for i := 0; i < len(text); i++ {
			k := bytes.IndexByte(text[i:], op)
			if k < 0 {
				break
			}
			i += k
			if i > 0 && i+1 < len(text) && isDigitOrSpace(text[i-1]) && isDigitOrSpace(text[i+1]) && nearDigit(text, i, len(text)) {
				return true
			}
		}
	}
	return false
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
