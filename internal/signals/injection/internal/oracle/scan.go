package oracle

import "math/bits"

const (
	ringSize = 16 // classed tokens a rule can look back over; power of two
	maxTok   = 32 // longer tokens are kept as "unknown word"
)

// Flags of the word being read.
const (
	wTitle   uint8 = 1 << iota // first letter upper case
	wLeet                      // contains digits or @ $ !
	wConf                      // contains confusable forms
	wForeign                   // contains letters of another script
	wOver                      // longer than maxTok
)

// Token flags: how a vocabulary word was recovered.
const (
	fLeet       uint8 = 1 << iota // digits or symbols stood in for letters (1gn0r3)
	fConfusable                   // full-width, mathematical, circled or Cyrillic/Greek look-alikes
)

// tok is a token with a class, and its position in the token stream.
type tok struct {
	pos   int
	mask  uint64
	flags uint8
}

// ASCII byte kinds for the tokenizer.
const (
	kOther = iota
	kLetter
	kDigit
	kSpace
	kNewline
	kBreak   // . ! ? ;
	kComma   // ,
	kColon   // :
	kApos    // '
	kLeetSym // @ $ (letters in leetspeak when inside a word)
	kMarker  // < [ #  (chat-template markers)
	kB64Sym  // + / = - _ : end a word but not a base64 run
	kEscape  // \ : "\n", "\r", "\t" in pasted JSON are whitespace
)

var kinds = func() (k [128]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		k[c] = kLetter
		k[c-'a'+'A'] = kLetter
	}
	for c := '0'; c <= '9'; c++ {
		k[c] = kDigit
	}
	k[' '], k['\t'], k['\r'], k['\v'], k['\f'] = kSpace, kSpace, kSpace, kSpace, kSpace
	k['\n'] = kNewline
	k['.'], k['!'], k['?'], k[';'] = kBreak, kBreak, kBreak, kBreak
	k[','] = kComma
	k[':'] = kColon
	k['\''] = kApos
	k['@'], k['$'] = kLeetSym, kLeetSym
	k['<'], k['['], k['#'] = kMarker, kMarker, kMarker
	k['+'], k['/'], k['='], k['-'], k['_'] = kB64Sym, kB64Sym, kB64Sym, kB64Sym, kB64Sym
	k['\\'] = kEscape
	return k
}()

// leetMap maps leetspeak digits and symbols to letters; '1' is tried as 'i'
// first and as 'l' second.
var leetMap = [128]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '9': 'g', '@': 'a', '$': 's', '!': 'i'}

func isLetter(c byte) bool { return c < 0x80 && kinds[c] == kLetter }
func isAlnum(c byte) bool  { return c < 0x80 && (kinds[c] == kLetter || kinds[c] == kDigit) }

// scanner is the per-call state; it lives on the caller's stack.
type scanner struct {
	ring  [ringSize]tok // the last tokens that have a class
	k     int           // tokens stored in ring so far
	n     int           // tokens seen so far
	fired uint32

	// current word
	buf     [maxTok]byte
	bl      int
	start   int // byte offset of the current word
	letters int
	uppers  int
	wf      uint8 // wTitle | wLeet | ... for the current word

	lineStart bool // the next word is the first on its line
	bol       bool // only blanks since the last newline (for "### ...")

	// letters spelled out one by one ("i g n o r e")
	sp    [64]byte
	spn   int
	spEnd int

	invisible       int // invisible characters (zero-width, BOM, fillers; ZWJ only inside words)
	invisibleInWord int // ... between two letters of a word
	bidi            int
	tags            int // Unicode tag characters (U+E0000 block)
	tagBuf          [256]byte
	tagN            int
}

// scan runs every heuristic over s and returns the set that fired. depth 0
// is the prompt; decoded payloads (base64, tag characters) are scanned at
// depth 1, which does not decode again, so the work stays linear.
func scan[T text](s T, depth int) uint32 {
	var sc scanner
	sc.lineStart, sc.bol = true, true
	n := len(s)
	// run is where the current run of base64 characters began; a run is
	// checked when any other byte ends it.
	run := 0
	for i := 0; i < n; {
		c := s[i]
		if c >= 0x80 {
			if depth == 0 && i-run >= minB64 {
				sc.fired |= base64Run(s, run, i)
			}
			i = scanRune(&sc, s, i)
			run = i
			continue
		}
		k := kinds[c]
		if k != kLetter && k != kDigit && k != kB64Sym {
			if depth == 0 && i-run >= minB64 {
				sc.fired |= base64Run(s, run, i)
			}
			run = i + 1
		}
		switch k {
		case kLetter:
			if sc.bl == 0 {
				sc.start = i
			}
			sc.bol = false
			// Most bytes are letters of a word: take them in a tight loop
			// on locals (the scanner fields live in memory).
			bl, letters, uppers := sc.bl, sc.letters, sc.uppers
			for {
				if c <= 'Z' {
					c += 'a' - 'A'
					if letters == 0 {
						sc.wf |= wTitle
					}
					uppers++
				}
				letters++
				if bl < maxTok {
					sc.buf[bl] = c
					bl++
				} else {
					sc.wf |= wOver
				}
				i++
				if i >= n {
					break
				}
				if c = s[i]; c >= 0x80 || kinds[c] != kLetter {
					break
				}
			}
			sc.bl, sc.letters, sc.uppers = bl, letters, uppers
			continue
		case kDigit:
			if sc.bl == 0 {
				sc.start = i
			}
			sc.add(c)
			sc.wf |= wLeet
			sc.bol = false
		case kSpace:
			if sc.bl > 0 {
				sc.end(i)
			}
		case kNewline:
			sc.end(i)
			sc.push(cNewline, 0)
			sc.lineStart, sc.bol = true, true
		case kBreak:
			sc.bol = false
			if c == '!' && sc.bl > 0 && i+1 < n && isLetter(s[i+1]) { // "!gnore"-style leet inside a word
				sc.add(c)
				sc.wf |= wLeet
				break
			}
			sc.end(i)
			sc.push(cBreak, 0)
		case kComma:
			sc.end(i)
			sc.push(cComma, 0)
			sc.bol = false
		case kColon:
			sc.end(i)
			sc.push(cColon, 0)
			sc.bol = false
		case kApos: // don't, you're, what's: one word
			sc.bol = false
			if sc.bl > 0 && i+1 < n && isLetter(s[i+1]) {
				break
			}
			sc.end(i)
		case kLeetSym:
			sc.bol = false
			if i+1 < n && isAlnum(s[i+1]) && (sc.bl > 0 || isLetter(s[i+1])) {
				if sc.bl == 0 {
					sc.start = i
				}
				sc.add(c)
				sc.wf |= wLeet
				break
			}
			sc.end(i)
		case kMarker:
			sc.end(i)
			marker(&sc, s, i)
			sc.bol = false
		case kEscape:
			sc.end(i)
			if i+1 < n {
				switch s[i+1] {
				case 'n':
					sc.push(cNewline, 0)
					sc.lineStart, sc.bol = true, true
					i++
					run = i + 1
				case 'r', 't':
					i++
					run = i + 1
				}
			}
		default:
			sc.end(i)
			sc.bol = false
		}
		i++
	}
	if depth == 0 && n-run >= minB64 {
		sc.fired |= base64Run(s, run, n)
	}
	sc.end(n)
	sc.push(cBreak, 0) // the end of the text ends the last sentence
	sc.flushSpaced()
	sc.finish(depth)
	return sc.fired
}

func (sc *scanner) add(c byte) {
	if sc.bl < maxTok {
		sc.buf[sc.bl] = c
		sc.bl++
	} else {
		sc.wf |= wOver
	}
}

func (sc *scanner) letter(c byte) {
	if c <= 'Z' {
		c += 'a' - 'A'
		sc.uppers++
		if sc.letters == 0 {
			sc.wf |= wTitle
		}
	}
	sc.letters++
	sc.add(c)
}

// end closes the current word at byte offset i, classifies it and pushes it.
func (sc *scanner) end(i int) {
	if sc.bl == 0 {
		return
	}
	var mask uint64
	var fl uint8
	wf := sc.wf
	if sc.letters > 0 && wf&(wForeign|wOver) == 0 {
		if wf&wLeet == 0 {
			mask = lookup(&sc.buf, sc.bl)
		} else if sc.letters >= 2 {
			if mask = leetLookup(&sc.buf, sc.bl); mask != 0 {
				fl |= fLeet
			}
		}
		if mask&cDAN != 0 && sc.uppers != sc.letters {
			mask &^= cDAN // "Dan" is a name; "DAN" is the jailbreak persona
		}
		if wf&wConf != 0 && mask != 0 {
			fl |= fConfusable
		}
		if wf&wTitle != 0 && mask != 0 {
			mask |= cTitle
		}
	}
	if sc.lineStart {
		mask |= cLineStart
		sc.lineStart = false
	}
	if sc.bl == 1 && sc.letters == 1 {
		if sc.spn > 0 && sc.start-sc.spEnd > 3 {
			sc.flushSpaced()
		}
		if sc.spn < len(sc.sp) {
			sc.sp[sc.spn] = sc.buf[0]
			sc.spn++
		}
		sc.spEnd = i
	} else if sc.spn > 0 {
		sc.flushSpaced()
	}
	sc.bl, sc.letters, sc.uppers, sc.wf = 0, 0, 0, 0
	sc.push(mask, fl)
}

func leetLookup(w *[maxTok]byte, n int) uint64 {
	var b [maxTok]byte
	has1 := false
	for i, c := range w[:n] {
		if m := leetMap[c&0x7F]; m != 0 && c < 0x80 {
			b[i] = m
			has1 = has1 || c == '1'
		} else {
			b[i] = c
		}
	}
	if m := lookup(&b, n); m != 0 || !has1 {
		return m
	}
	for i, c := range w[:n] {
		if c == '1' {
			b[i] = 'l'
		}
	}
	return lookup(&b, n)
}

// push counts a token and, if it has a class, stores it in the ring and runs
// the rules that it can complete. Tokens without a class (most words) are
// only counted: they can fill a gap but never a slot, and they never block.
func (sc *scanner) push(mask uint64, fl uint8) {
	pos := sc.n
	sc.n++
	if mask == 0 {
		return
	}
	sc.ring[sc.k&(ringSize-1)] = tok{pos: pos, mask: mask, flags: fl}
	sc.k++
	m := mask & lastAny
	if m == 0 {
		return
	}
	var cand uint64
	for ; m != 0; m &= m - 1 {
		cand |= rulesByLast[bits.TrailingZeros64(m)]
	}
	// Rules with more than one slot need an earlier classed token within
	// their last gap; usually the previous classed token is far behind (a
	// '.' in code, a comma in prose) and only one-slot rules remain.
	prevPos := -1
	if sc.k >= 2 {
		prevPos = sc.ring[(sc.k-2)&(ringSize-1)].pos
	}
	if sc.k < 2 || prevPos < pos-1-maxLastGap {
		cand &= singleSlotRules
	}
	for ; cand != 0; cand &= cand - 1 {
		r := &rules[bits.TrailingZeros64(cand)]
		last := r.slots[len(r.slots)-1]
		if mask&last.all != last.all || (len(r.slots) > 1 && prevPos < pos-1-last.gap) {
			continue
		}
		ok, f := sc.back(r, len(r.slots)-2, sc.k-2, pos-1, pos-1-last.gap)
		if !ok {
			continue
		}
		f |= fl
		sc.fired |= 1 << r.h
		if f&fLeet != 0 {
			sc.fired |= 1 << hLeetspeak
		}
		if f&fConfusable != 0 {
			sc.fired |= 1 << hHomoglyphs
		}
	}
}

// back matches slot si (and, recursively, the slots before it) against the
// ring entries from index e backwards whose token position lies in [lo, hi].
// The search is bounded by the ring and by the product of the (small) gaps
// of one rule.
func (sc *scanner) back(r *rule, si, e, hi, lo int) (bool, uint8) {
	if si < 0 {
		// hi is the position just before the first slot.
		if r.notBefore != 0 && e >= 0 && sc.k-1-e < ringSize {
			if t := &sc.ring[e&(ringSize-1)]; t.pos == hi && t.mask&r.notBefore != 0 {
				return false, 0
			}
		}
		return true, 0
	}
	sl := &r.slots[si]
	for ; e >= 0 && sc.k-1-e < ringSize; e-- {
		t := &sc.ring[e&(ringSize-1)]
		if t.pos < lo {
			return false, 0
		}
		if t.mask&sl.any != 0 && t.mask&sl.all == sl.all {
			if ok, f := sc.back(r, si-1, e-1, t.pos-1, t.pos-1-sl.gap); ok {
				return true, f | t.flags
			}
		}
		if t.mask&r.block != 0 {
			return false, 0
		}
	}
	return false, 0
}

// Stems looked for in words spelled out letter by letter.
var (
	spacedOverride = []string{"ignore", "disregard", "forget", "override", "bypass"}
	spacedTarget   = []string{"instruction", "rule", "prompt", "guideline", "previous"}
	spacedOther    = []string{"jailbreak", "systemprompt", "uncensored", "unfiltered", "developermode", "norestriction"}
)

func (sc *scanner) flushSpaced() {
	if sc.spn >= 4 {
		w := sc.sp[:sc.spn]
		over := containsAny(w, spacedOverride)
		if over || containsAny(w, spacedOther) || containsAny(w, spacedTarget) {
			sc.fired |= 1 << hSpacedLetters
		}
		if over && containsAny(w, spacedTarget) {
			sc.fired |= 1 << hInstructionOverride
		}
	}
	sc.spn = 0
}

const (
	minInvisibleInWord = 2 // invisible characters between letters of words
	minInvisible       = 8 // invisible characters anywhere
	minTags            = 4 // Unicode tag characters
)

func (sc *scanner) finish(depth int) {
	if sc.invisibleInWord >= minInvisibleInWord || sc.invisible >= minInvisible {
		sc.fired |= 1 << hInvisibleChars
	}
	if sc.bidi > 0 {
		sc.fired |= 1 << hBidiOverride
	}
	if sc.tags >= minTags {
		sc.fired |= 1 << hUnicodeTags
		if depth == 0 && sc.tagN > 0 {
			sc.fired |= scan(sc.tagBuf[:sc.tagN], depth+1)
		}
	}
}

// scanRune handles a non-ASCII character at s[i] and returns the next index.
func scanRune[T text](sc *scanner, s T, i int) int {
	r, size := decodeRune(s, i)
	next := i + size
	inWord := sc.bl > 0 && next < len(s) && isLetter(s[next])
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		sc.tags++
		if r >= 0xE0020 && r <= 0xE007E && sc.tagN < len(sc.tagBuf) {
			sc.tagBuf[sc.tagN] = byte(r - 0xE0000)
			sc.tagN++
		}
	case isInvisible(r):
		if r != 0x200D { // ZWJ is part of ordinary emoji sequences
			sc.invisible++
		}
		if inWord {
			sc.invisibleInWord++
		}
	case isBidiControl(r):
		sc.bidi++
	case isIgnorable(r):
	case r == 0x2019 || r == 0x2018 || r == 0x02BC: // typographic apostrophes
		if !inWord {
			sc.end(i)
		}
	default:
		sc.bol = false
		b, conf := fold(r)
		switch {
		case b != 0:
			if sc.bl == 0 {
				sc.start = i
			}
			if b >= '0' && b <= '9' {
				sc.add(b)
				sc.wf |= wLeet
			} else {
				sc.letter(b)
			}
			if conf {
				sc.wf |= wConf
			}
		case isOtherLetter(r):
			if sc.bl == 0 {
				sc.start = i
			}
			sc.wf |= wForeign
			sc.add('?')
		default:
			sc.end(i)
		}
	}
	return next
}

func hasPrefixAt[T text](s T, i int, p string) bool {
	if i < 0 || len(s)-i < len(p) {
		return false
	}
	for k := 0; k < len(p); k++ {
		if s[i+k] != p[k] {
			return false
		}
	}
	return true
}

func hasPrefixFoldAt[T text](s T, i int, p string) bool {
	if i < 0 || len(s)-i < len(p) {
		return false
	}
	for k := 0; k < len(p); k++ {
		c := s[i+k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[k] {
			return false
		}
	}
	return true
}

// roleWords are the turn names of "### Name:" (Alpaca-style) templates.
var roleWords = []string{"instruction", "system", "response", "input", "human", "assistant", "user"}

// marker recognises chat-template control sequences at s[i] ('<', '[' or
// '#'): <|im_start|>, <|system|>, <|eot_id|> and other <|name|> tokens,
// <<SYS>>, <start_of_turn>, [INST], and "### Instruction:" at a line start.
// A marker that opens a system turn also fires fake_system_turn.
func marker[T text](sc *scanner, s T, i int) {
	n := len(s)
	system := false
	found := false
	switch s[i] {
	case '<':
		switch {
		case hasPrefixAt(s, i, "<<SYS>>"), hasPrefixAt(s, i, "<</SYS>>"):
			found, system = true, true
		case hasPrefixAt(s, i, "<start_of_turn>"), hasPrefixAt(s, i, "<end_of_turn>"):
			found = true
		case i+1 < n && s[i+1] == '|':
			j := i + 2
			for j < n && j-i < 40 && (isAlnum(s[j]) || s[j] == '_') {
				j++
			}
			if j-(i+2) < 2 || !hasPrefixAt(s, j, "|>") {
				return
			}
			found = true
			name := i + 2
			switch {
			case j-name == 6 && hasPrefixFoldAt(s, name, "system"):
				system = true
			case hasPrefixFoldAt(s, name, "im_start"), hasPrefixFoldAt(s, name, "start_header_id"):
				k := j + 2
				for k < n && k-j < 6 && (s[k] == ' ' || s[k] == '\n') {
					k++
				}
				system = hasPrefixFoldAt(s, k, "system")
			}
		}
	case '[':
		found = hasPrefixAt(s, i, "[INST]") || hasPrefixAt(s, i, "[/INST]")
	case '#':
		if !sc.bol || !hasPrefixAt(s, i, "###") {
			return
		}
		k := i + 3
		for k < n && s[k] == ' ' {
			k++
		}
		w := k
		for k < n && isLetter(s[k]) && k-w <= 12 {
			k++
		}
		l := k - w
		for k < n && s[k] == ' ' {
			k++
		}
		if k >= n || s[k] != ':' {
			return
		}
		for _, role := range roleWords {
			if l == len(role) && hasPrefixFoldAt(s, w, role) {
				found = true
				system = role == "system"
			}
		}
	}
	if found {
		sc.fired |= 1 << hChatTemplateToken
	}
	if system {
		sc.fired |= 1 << hFakeSystemTurn
	}
}

func containsAny(b []byte, subs []string) bool {
	for _, s := range subs {
		if containsFold(b, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether b contains sub (lower case), ignoring ASCII case.
func containsFold(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if hasPrefixFoldAt(b, i, sub) {
			return true
		}
	}
	return false
}

// Base64 payloads.
const (
	minB64   = 20   // base64 of "ignore the rules" is 24 characters
	maxB64In = 1024 // characters of one blob that are decoded and scanned
	minText  = 8    // decoded bytes
)

var b64v = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; i < len(std); i++ {
		t[std[i]] = int8(i)
	}
	t['+'], t['-'] = 62, 62
	t['/'], t['_'] = 63, 63
	return t
}()

// b64AttackWords: a decoded payload mentioning these is an attack even when
// no phrase rule matched in it.
var b64AttackWords = []string{"ignore", "disregard", "instruction", "system prompt", "jailbreak", "bypass", "override", "developer mode", "no restrictions", "uncensored"}

// base64Run checks the run s[i:j] of base64 characters (at least minB64
// long): with both letter cases it is decoded (standard or URL alphabet) and,
// when the result is printable text, scanned at depth 1.
func base64Run[T text](s T, i, j int) uint32 {
	up, lo := false, false
	for k := i; k < j && !(up && lo); k++ {
		c := s[k]
		up = up || (c >= 'A' && c <= 'Z')
		lo = lo || (c >= 'a' && c <= 'z')
	}
	if !up || !lo {
		return 0
	}
	return decodeAndScan(s, i, j)
}

func decodeAndScan[T text](s T, i, j int) uint32 {
	var buf [maxB64In * 3 / 4]byte
	m, acc, bits := 0, 0, 0
	for k := i; k < j && k-i < maxB64In; k++ {
		v := b64v[s[k]]
		if v < 0 { // '=' padding
			break
		}
		acc = acc<<6 | int(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			buf[m] = byte(acc >> bits)
			m++
			acc &= 1<<bits - 1
		}
	}
	if m < minText {
		return 0
	}
	d := buf[:m]
	printable, spaces := 0, 0
	for _, c := range d {
		switch {
		case c == ' ':
			spaces++
			printable++
		case c >= 0x21 && c <= 0x7E, c == '\n', c == '\r', c == '\t':
			printable++
		}
	}
	if spaces == 0 || printable*10 < m*9 {
		return 0
	}
	sub := scan(d, 1)
	if sub != 0 || containsAny(d, b64AttackWords) {
		return sub | 1<<hBase64Payload
	}
	return 0
}
