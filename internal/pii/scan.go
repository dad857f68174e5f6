package pii

// state is the per-call scratch of one Scan. It lives on the caller's stack.
type state struct {
	counts [numTypes]int32
	// pemEnd caches the index of the next "-----END" marker so that many
	// BEGIN lines without an END cannot make the scan quadratic.
	pemEnd int
	runs   runMemo
	run    numRun // scratch of numbers()
	// The last apiKeyAt and jwtAt answers: assignment() checks the value
	// of "TOKEN=<key>" for a key, and the scan then reaches the same key.
	key, jwtMemo shapeMemo
	// The last secretName answer, asked by the skip loop and again by
	// assignment().
	name shapeMemo
}

// shapeMemo caches one answer of a pure matcher by position.
type shapeMemo struct {
	pos1 int // position + 1; 0: empty
	end  int
	ok   bool
}

func (st *state) apiKey(t string, i int) (int, bool) {
	if m := &st.key; m.pos1 != i+1 {
		m.end, m.ok = apiKeyAt(t, i, &st.runs)
		m.pos1 = i + 1
	}
	return st.key.end, st.key.ok
}

func (st *state) jwt(t string, i int) (int, bool) {
	if m := &st.jwtMemo; m.pos1 != i+1 {
		m.end, m.ok = jwtAt(t, i, &st.runs)
		m.pos1 = i + 1
	}
	return st.jwtMemo.end, st.jwtMemo.ok
}

const (
	pemUnknown = -2
	pemNone    = -1
)

// Actions of the main loop, by byte.
const (
	actSkip = iota
	actWord
	actDigit
	actAt
	actPlusParen
	actDash
	actColon
)

var action = func() (a [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case cls[c]&clAlpha != 0:
			a[c] = actWord
		case cls[c]&clDigit != 0:
			a[c] = actDigit
		}
	}
	a['@'] = actAt
	a['+'], a['('] = actPlusParen, actPlusParen
	a['-'] = actDash
	a[':'] = actColon
	return a
}()

// scan walks t once. Every branch returns an index strictly greater than i,
// and every candidate validator looks at a bounded window or consumes what it
// looked at, so the whole pass is linear in len(t).
func (st *state) scan(t string) {
	n := len(t)
	for i := 0; i < n; {
		if i = st.skipPlain(t, i); i >= n {
			return
		}
		switch action[t[i]] {
		case actSkip:
			i++
			for i < n && action[t[i]] == actSkip {
				i++
			}
		case actWord:
			i = st.word(t, i)
		case actDigit:
			i = st.digit(t, i)
		case actAt:
			i = st.email(t, i)
		case actPlusParen:
			i = st.plusParen(t, i)
		case actDash:
			i = st.dash(t, i)
		default: // actColon
			i = st.colon(t, i)
		}
	}
}

func (st *state) add(id typeID) { st.counts[id]++ }

// numberStartOK reports whether a number may start after byte p: not inside an
// identifier, a dotted version or a dashed code.
func numberStartOK(p byte) bool {
	return !isWord(p) && p != '.' && p != '-'
}

func (st *state) digit(t string, i int) int {
	if !numberStartOK(prev(t, i)) {
		return skipWord(t, i)
	}
	if end, ok := ipv6At(t, i); ok {
		st.add(tIPv6)
		return end
	}
	return st.numbers(t, i)
}

func (st *state) plusParen(t string, i int) int {
	if isWord(prev(t, i)) || !isDigit(at(t, i+1)) {
		return i + 1
	}
	return st.numbers(t, i)
}

func (st *state) colon(t string, i int) int {
	if at(t, i+1) == ':' && !isWord(prev(t, i)) && prev(t, i) != ':' {
		if end, ok := ipv6At(t, i); ok {
			st.add(tIPv6)
			return end
		}
	}
	return i + 1
}

// word handles a token that starts with a letter: vendor key prefixes, JWTs,
// IBANs, IPv6 addresses starting with a hex letter, URL userinfo and
// secret-name assignments.
func (st *state) word(t string, i int) int {
	if isEscapeLetter(t, i) {
		return i + 1 // "\n4111...": the number starts after the escape
	}
	n := len(t)
	e := wordEnd(t, i)
	// Fast path for ordinary words: nothing that starts with a short word
	// can match unless the next byte continues a token ('-', '.', ':'),
	// assigns ('=', ':', a closing quote) or, for a space, the word is an
	// IBAN group or an assignment operator follows the space.
	if e-i < 15 {
		switch at(t, e) {
		case '-', '.', ':', '=', '"', '\'', '`':
		case ' ', '\t':
			if c := at(t, e+1); e-i != 4 && c != '=' && c != ':' && c != ' ' && c != '\t' {
				return e
			}
		default:
			return e
		}
	}
	if !isWord(prev(t, i)) {
		if e-i <= 4 && at(t, e) == ':' && allHex(t[i:e]) {
			if end, ok := ipv6At(t, i); ok {
				st.add(tIPv6)
				return end
			}
		}
		// Every shaped token is at least 15 bytes long or continues with
		// '-' / '.' (sk-..., SG.x.y, eyJ...), or is a 4-character IBAN group
		// followed by a space; ordinary words skip the prefix checks.
		if c := at(t, e); e-i >= 15 || c == '-' || c == '.' || (e-i == 4 && c == ' ') {
			if end, id, ok := st.tokenAt(t, i); ok {
				st.add(id)
				return end
			}
		}
	}
	if e+2 < n && t[e] == ':' && t[e+1] == '/' && t[e+2] == '/' {
		return st.urlUserinfo(t, e+3)
	}
	if end, ok := st.assignment(t, i, e); ok {
		return end
	}
	return e
}

// tokenAt matches the shaped tokens that start with a letter.
func (st *state) tokenAt(t string, i int) (end int, id typeID, ok bool) {
	if end, ok = st.apiKey(t, i); ok {
		return end, tAPIKey, true
	}
	if end, ok = st.jwt(t, i); ok {
		return end, tJWT, true
	}
	if end, ok = ibanAt(t, i); ok {
		return end, tIBAN, true
	}
	return 0, 0, false
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if cls[s[i]]&clHex == 0 {
			return false
		}
	}
	return true
}
