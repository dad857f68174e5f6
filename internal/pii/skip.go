package pii

import (
	"math/bits"
	"strings"
)

// The skip loop. Most prompt bytes are letters of ordinary words, blanks and
// punctuation that cannot start a finding, and most of the remaining
// candidates (numbers, "key: value") turn out to be nothing. skipPlain finds
// the next position where the detectors have something to look at, and the
// main loop in scan.go dispatches there exactly as before.
//
// The contract that keeps the findings unchanged: skipPlain steps only over
// main-loop positions whose dispatch would return without side effects, and
// lands where the dispatch would have returned; for a word that means
// word()'s fast path, or a slow path that provably fails. Numbers are the
// one exception: it hands them to digit() itself. It may stop early (that
// only costs time), never late. The differential tests compare every input
// with the scanner as it was before this loop existed.

// Classes of the byte at a position of the main loop.
const (
	pSkip      = iota // no action: step over
	pLetter           // starts a word: word()
	pStop             // digit, '@': always dispatched
	pDash             // '-': dispatched only at "-----BEGIN "
	pColon            // ':': dispatched only at "::"
	pPlusParen        // '+', '(': dispatched only before a digit
	pBackslash        // '\': a following n, t or r is an escape letter
)

var posClass = func() (a [256]uint8) {
	for c := 0; c < 256; c++ {
		switch action[c] {
		case actWord:
			a[c] = pLetter
		case actDigit, actAt:
			a[c] = pStop
		case actPlusParen:
			a[c] = pPlusParen
		case actDash:
			a[c] = pDash
		case actColon:
			a[c] = pColon
		}
	}
	a['\\'] = pBackslash
	return a
}()

// Classes of the byte that ends a word (see word()).
const (
	wPlain  = iota // word() returns the word's end
	wBlank         // ' ', '\t'
	wDot           // '.'
	wDash          // '-'
	wQuote         // '"', '\'', '`'
	wAssign        // ':', '='
)

var afterWord = func() (a [256]uint8) {
	a[' '], a['\t'] = wBlank, wBlank
	a['.'] = wDot
	a['-'] = wDash
	a['"'], a['\''], a['`'] = wQuote, wQuote, wQuote
	a[':'], a['='] = wAssign, wAssign
	return a
}()

// minShapedWord: word() looks for a shaped token in a word of this length or
// more whatever follows it. Every key rule's prefix plus minimum body is
// longer (TestSkipInvariants), and so is every IBAN.
const minShapedWord = 15

// Byte classes of the block pass.
const (
	bSpecial = 1 << iota // may matter: see backUp
	bNonWord             // ends an identifier run
)

// blk classifies bytes for the block pass. Letters and '_' are 0; blanks,
// quotes, most punctuation and non-ASCII bytes are bNonWord only: a word they
// end is ordinary unless a special byte follows it, which backUpFrom deals
// with.
var blk = func() (a [256]uint8) {
	for c := 0; c < 256; c++ {
		if !isWord(byte(c)) {
			a[c] = bNonWord
		}
		if backUp[c] != upNone {
			a[c] |= bSpecial
		}
	}
	a['@'] |= bSpecial
	a['\\'] |= bSpecial
	return a
}()

// Back-up rules of the special bytes: which earlier position the word pass
// must start from so that it sees what the special byte can change.
const (
	upNone   = iota // '@', backslash: nothing before it depends on it
	upWord          // 'G', 'J': the identifier run that holds it
	upDigit         // digit: the run that holds it, or a '(' or '+' just before
	upAdj           // '-': the word right before it (dashToken)
	upAssign        // '=', ':': a word, then an optional quote and blanks
	upTail          // the unread tail: any of the above
)

// backUp marks the special bytes other than '@' and backslash. A '.' is not
// special: after a word it matters only for "SG." (SendGrid) and a JWT
// header "eyJ...", so the 'G' and the 'J' stand in for it; the words that
// hold them are looked at in full. A '(' or '+' matters only before a digit,
// so the digit stands in for it.
var backUp = func() (a [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		a[c] = upDigit
	}
	a['G'], a['J'] = upWord, upWord
	a['-'] = upAdj
	a['='], a[':'] = upAssign, upAssign
	return a
}()

// skipPlain returns the first position at or after i, reached by the main
// loop, whose dispatch may do more than step over an ordinary byte or word;
// len(t) if there is none. Numbers, the most common candidates, it hands to
// digit() itself rather than returning to the dispatch.
//
// It runs in two gears. The block pass reads eight bytes at a time through
// the blk table until a block holds a special byte or is made only of
// identifier bytes (every run of 15 or more covers a whole block, so no long
// word is missed). Every word it passes is short and ends at a byte that
// makes word() return the word's end, unless the special byte is what
// follows the word (directly, or after blanks and a quote for '=' and ':');
// so it backs up over those, and the word pass takes over from there, one
// word or byte at a time, until it is past the special byte.
func (st *state) skipPlain(t string, i int) int {
	n := len(t)
	if i > 0 && i < n && t[i-1] == '\\' && isEscapeByte(t[i]) {
		return i
	}
	for i < n {
		p := i
		f, up := -1, uint8(upTail)
		for ; p+8 <= n; p += 8 {
			s := t[p : p+8]
			if blk[s[0]]|blk[s[1]]|blk[s[2]]|blk[s[3]]|blk[s[4]]|blk[s[5]]|blk[s[6]]|blk[s[7]] == bNonWord {
				continue
			}
			m := uint64(blk[s[0]]) | uint64(blk[s[1]])<<8 | uint64(blk[s[2]])<<16 | uint64(blk[s[3]])<<24 |
				uint64(blk[s[4]])<<32 | uint64(blk[s[5]])<<40 | uint64(blk[s[6]])<<48 | uint64(blk[s[7]])<<56
			if sp := m & (bSpecial * lsb); sp != 0 {
				f = p + bits.TrailingZeros64(sp)>>3
				up = backUp[t[f]]
			} else {
				f, up = p, upWord // identifier-only block: maybe a long word
			}
			break
		}
		switch {
		case f < 0:
			// Fewer than 8 bytes are left: the word pass finishes the text,
			// starting where a word that may look into them starts.
			if p >= n {
				return n
			}
			f = n - 1
			i = backUpFrom(t, i, p, upTail)
		case up == upDigit && (f == i || !isWord(t[f-1])):
			// A number starts here (the common special byte): digit()
			// directly, or plusParen() for "(4" and "+4".
			if f > i && (t[f-1] == '(' || t[f-1] == '+') {
				return f - 1
			}
			if i = digitStep(t, f); i < 0 {
				i = st.digit(t, f)
			}
			continue
		case up == upAssign && st.assignTrivial(t, i, f):
			// "key: 15s", "status=200": no word before it can assign a
			// secret, and the operator byte itself is stepped over.
			i = f + 1
			continue
		default:
			i = backUpFrom(t, i, f, up)
		}
		for i <= f {
			if i = st.wordStep(t, i); i < 0 {
				return -i - 1
			}
		}
	}
	return n
}

// backUpFrom returns the main-loop position, not before lo, from which the
// word pass must look at the special byte at f: the start of the word that
// may depend on it.
func backUpFrom(t string, lo, f int, up uint8) int {
	q := f
	switch up {
	case upNone:
		return f
	case upDigit:
		if q > lo && (t[q-1] == '(' || t[q-1] == '+') {
			return q - 1
		}
	case upTail:
		if q > lo && (t[q-1] == '(' || t[q-1] == '+') {
			return q - 1
		}
		fallthrough
	case upAssign:
		for q > lo && (t[q-1] == ' ' || t[q-1] == '\t') {
			q--
		}
		if q > lo && (t[q-1] == '"' || t[q-1] == '\'' || t[q-1] == '`') {
			q--
		}
	}
	for q > lo && isWord(t[q-1]) {
		q--
	}
	return q
}

// wordStep handles the main-loop position i: it returns the next position
// when the dispatch at i would just step over a byte or an ordinary word,
// and -i-1 when the dispatch must run.
func (st *state) wordStep(t string, i int) int {
	n := len(t)
	switch posClass[t[i]] {
	case pSkip:
		return i + 1
	case pLetter:
		e := wordEnd(t, i)
		if e-i >= minShapedWord {
			return -i - 1
		}
		if e >= n {
			return n
		}
		switch afterWord[t[e]] {
		case wPlain:
			return e
		case wBlank:
			if e-i == 4 && ibanGroupShape(t, i) {
				return -i - 1
			}
			k := skipBlanks(t, e)
			if c := at(t, k); (c == '=' || c == ':') && st.mayAssign(t, e) {
				return -i - 1
			}
			return k
		case wDot:
			// Only "SG.<...>" (SendGrid) and a JWT header can continue
			// through a dot; no key body and no IBAN contains one.
			if dotToken(t[i:e]) {
				return -i - 1
			}
			return e
		case wDash:
			if dashToken(t[i:e]) {
				return -i - 1
			}
			return e
		case wQuote:
			if st.mayAssign(t, e) {
				return -i - 1
			}
			return e
		default: // wAssign
			if t[e] == ':' && (e-i <= 4 && allHex(t[i:e]) || hasPrefix(t[e:], "://")) {
				return -i - 1 // IPv6 or URL userinfo
			}
			if st.mayAssign(t, e) {
				return -i - 1
			}
			return e
		}
	case pStop:
		if t[i] == '@' {
			if i == 0 || cls[t[i-1]]&clLocal == 0 {
				return i + 1 // no local part: email() returns i+1
			}
			return -i - 1
		}
		if j := digitStep(t, i); j >= 0 {
			return j
		}
		return -i - 1
	case pDash:
		if at(t, i+1) == '-' && hasPrefix(t[i:], pemBegin) {
			return -i - 1
		}
		return i + 1
	case pColon:
		if at(t, i+1) == ':' {
			return -i - 1
		}
		return i + 1
	case pPlusParen:
		if isDigit(at(t, i+1)) {
			return -i - 1
		}
		return i + 1
	default: // pBackslash
		if isEscapeByte(at(t, i+1)) {
			return -(i + 1) - 1
		}
		return i + 1
	}
}

// mayAssign reports whether word() would go on to judge a value assigned to
// the word ending at we.
func (st *state) mayAssign(t string, we int) bool {
	_, ok := st.assignedValue(t, we)
	return ok
}

// assignTrivial reports, for the ':' or '=' at f with only plain bytes in
// [i, f), that word() returns the end of whichever word the operator follows,
// and that the dispatch at f just steps over it: the operator is "==", the
// value after it is shorter than any secret, or no secret-looking name
// precedes it.
func (st *state) assignTrivial(t string, i, f int) bool {
	k := f + 1
	if t[f] == ':' {
		switch at(t, k) {
		case ':':
			return false // "::": colon() may see an IPv6 address
		case '/':
			return false // "://": URL userinfo
		case '=':
			k++
		}
		if f > i && isWord(t[f-1]) {
			// word() tries an IPv6 address for a hex word of up to 4
			// bytes right before a ':'.
			w := f - 1
			for w > i && isWord(t[w-1]) && f-w <= 4 {
				w--
			}
			if f-w <= 4 && allHex(t[w:f]) {
				return false
			}
		}
	} else {
		switch at(t, k) {
		case '=':
			return true // "==": assignment() gives up
		case '>':
			k++
		}
	}
	if peekValue(t, skipBlanks(t, k)) < 5 {
		return true
	}
	// assignment() would read the value only for a secret-looking name: the
	// word that ends right before the operator, or before blanks and a
	// quote in front of it ("key" : value).
	we := f
	for we > i && (t[we-1] == ' ' || t[we-1] == '\t') {
		we--
	}
	if we > i && (t[we-1] == '"' || t[we-1] == '\'' || t[we-1] == '`') {
		we--
	}
	return we == i || !isWord(t[we-1]) || !st.secretName(t, we)
}

// digitStep is digit() for the numbers that cannot be anything, which is
// most of them: it reads the run of digit groups as readRun does, without
// storing it, and returns where digit() would return, or -1 when digit()
// must run (an IPv6 candidate, a run with blanks or parentheses between its
// groups, or one long enough or grouped enough for a detector).
func digitStep(t string, i int) int {
	if !numberStartOK(prev(t, i)) {
		return wordEnd(t, i) // skipWord
	}
	n := len(t)
	var j int
	if i+8 <= n {
		// Both runs at once, without a loop: most numbers are short.
		x := load64(t, i)
		hex := min(bits.TrailingZeros64(nonHexMask(x))>>3, 4)
		// ipv6At's fast exit, inverted: a ':' after at most four hex digits.
		if at(t, i+hex) == ':' && ipv6Possible(t, i) {
			return -1
		}
		j = i + bits.TrailingZeros64(nonDigitMask(x))>>3
		for j < n && isDigit(t[j]) { // 8 digits or more
			j++
		}
	} else {
		k := i + 1
		for k < n && k-i < 4 && cls[t[k]]&clHex != 0 {
			k++
		}
		if at(t, k) == ':' && ipv6Possible(t, i) {
			return -1
		}
		j = i + 1
		for j < n && isDigit(t[j]) {
			j++
		}
	}
	first, groups, digits := j-i, 1, j-i
	dots := true // the separators so far are all '.'
	for groups < maxGroups {
		c := at(t, j)
		if !isRunSep(c) || !isDigit(at(t, j+1)) {
			if c == ' ' && at(t, j+1) == '(' && isDigit(at(t, j+2)) {
				return -1 // a parenthesised group follows
			}
			break
		}
		if c == ' ' {
			return -1 // a match may start at any group after a blank
		}
		if groups < 4 {
			dots = dots && c == '.'
		}
		s := j + 1
		j += 2
		for j < n && isDigit(t[j]) {
			j++
		}
		groups++
		digits += j - s
	}
	// The run is part of a larger token: numbers() reports nothing.
	c := at(t, j)
	if isWord(c) {
		return wordEnd(t, j) // skipWord
	}
	if c == '@' || (c == '-' && isAlnum(at(t, j+1))) {
		return j
	}
	// Only the match at the first group is tried (no blank inside). A card
	// needs 13 digits, an IPv4 address 4 groups joined by dots, an SSN or a
	// phone number 3 groups starting with 3 digits (4 groups after a trunk
	// "1"), a bare SSN one group of 9.
	if digits >= 13 || groups >= 4 && (dots || first == 1) || groups >= 3 && first == 3 || groups == 1 && first == 9 {
		return -1
	}
	return j
}

// ipv6Possible reports whether ipv6At(t, i) may match, for a digit at i after
// a byte that lets a number start: not after a ':' (ipv6At refuses), and
// only if the run of hex digits, ':' and '.' it would read holds a "::" or
// six ':' (fewer cannot make 8 groups).
func ipv6Possible(t string, i int) bool {
	if prev(t, i) == ':' {
		return false
	}
	colons := 0
	for j := i; j < len(t) && j-i <= maxIPv6; j++ {
		c := t[j]
		if c == ':' {
			if at(t, j+1) == ':' {
				return true
			}
			colons++
		} else if cls[c]&clHex == 0 && c != '.' {
			break
		}
	}
	return colons >= 6
}

func isEscapeByte(c byte) bool { return c == 'n' || c == 't' || c == 'r' }

func skipBlanks(t string, k int) int {
	for k < len(t) && (t[k] == ' ' || t[k] == '\t') {
		k++
	}
	return k
}

// ibanGroupShape reports whether the 4 bytes at i could open an IBAN in print
// form: two upper-case letters and two digits.
func ibanGroupShape(t string, i int) bool {
	return isUpper(t[i]) && isUpper(t[i+1]) && isDigit(t[i+2]) && isDigit(t[i+3])
}

// dotToken reports whether a word followed by '.' may start a shaped token.
func dotToken(w string) bool {
	return w == "SG" || hasPrefix(w, "eyJ")
}

// dashToken reports whether a word followed by '-' may start a shaped token:
// the part before the dash of a key prefix with a dash, a prefix whose key
// body may contain dashes, or a JWT header (base64url has '-').
func dashToken(w string) bool {
	if len(w) == 0 || w[0] >= 128 || !dashFirst[w[0]] {
		return false
	}
	if hasPrefix(w, "eyJ") {
		return true
	}
	for _, p := range dashWords {
		if w == p {
			return true
		}
	}
	for _, p := range dashBodyPrefixes {
		if hasPrefix(w, p) {
			return true
		}
	}
	return false
}

// dashWords and dashBodyPrefixes are derived from keyRules.
var dashWords, dashBodyPrefixes = func() (words, prefixes []string) {
	for _, r := range keyRules {
		if k := strings.IndexByte(r.prefix, '-'); k >= 0 {
			words = append(words, r.prefix[:k])
		} else if inBody(r.body, '-') {
			prefixes = append(prefixes, r.prefix)
		}
	}
	return words, prefixes
}()

var dashFirst = func() (a [128]bool) {
	a['e'] = true
	for _, w := range dashWords {
		a[w[0]] = true
	}
	for _, p := range dashBodyPrefixes {
		a[p[0]] = true
	}
	return a
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 reads t[i:i+8] little-endian; the compiler turns it into one load.
func load64(t string, i int) uint64 {
	s := t[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// nonWordMask sets the high bit of every byte of x that is not an identifier
// byte (isWord: A-Z a-z 0-9 _). Each range test adds a constant to the
// 7-bit value so that the high bit flips at the range bound; no carry
// crosses a byte.
func nonWordMask(x uint64) uint64 {
	y := x &^ msb
	f := y | 0x20*lsb // fold case: A-Z becomes a-z, nothing else lands in a-z
	alpha := (f + (0x80-'a')*lsb) &^ (f + (0x7f-'z')*lsb)
	digit := (y + (0x80-'0')*lsb) &^ (y + (0x7f-'9')*lsb)
	u := y ^ '_'*lsb
	under := ^((u + 0x7f*lsb) | u)
	return ^(alpha|digit|under)&msb | x&msb
}

// nonDigitMask sets the high bit of every byte of x that is not 0-9.
func nonDigitMask(x uint64) uint64 {
	y := x &^ msb
	digit := (y + (0x80-'0')*lsb) &^ (y + (0x7f-'9')*lsb)
	return ^digit&msb | x&msb
}

// nonHexMask sets the high bit of every byte of x that is not 0-9 A-F a-f.
func nonHexMask(x uint64) uint64 {
	y := x &^ msb
	f := y | 0x20*lsb
	digit := (y + (0x80-'0')*lsb) &^ (y + (0x7f-'9')*lsb)
	af := (f + (0x80-'a')*lsb) &^ (f + (0x7f-'f')*lsb)
	return ^(digit|af)&msb | x&msb
}

// wordEnd returns the end of the identifier run starting at i.
func wordEnd(t string, i int) int {
	for i+8 <= len(t) {
		if m := nonWordMask(load64(t, i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(t) && isWord(t[i]) {
		i++
	}
	return i
}
