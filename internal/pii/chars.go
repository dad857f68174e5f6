package pii

// Byte classes, looked up once per byte on the hot path. Non-ASCII bytes
// (including invalid UTF-8) have no class, so they only ever end a token.
const (
	clDigit  = 1 << iota // 0-9
	clUpper              // A-Z
	clLower              // a-z
	clHex                // 0-9 A-F a-f
	clLocal              // e-mail local part: A-Z a-z 0-9 . _ % + -
	clDomain             // host label: A-Z a-z 0-9 -
	clB64URL             // base64url: A-Z a-z 0-9 _ -
	clB64                // base64: A-Z a-z 0-9 + / =

	clAlpha = clUpper | clLower
	clAlnum = clAlpha | clDigit
)

var cls = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= clDigit | clHex | clLocal | clDomain | clB64URL | clB64
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= clUpper | clLocal | clDomain | clB64URL | clB64
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clLower | clLocal | clDomain | clB64URL | clB64
	}
	for _, c := range "ABCDEFabcdef" {
		t[c] |= clHex
	}
	for _, c := range "._%+-" {
		t[c] |= clLocal
	}
	t['-'] |= clDomain | clB64URL
	t['_'] |= clB64URL
	for _, c := range "+/=" {
		t[c] |= clB64
	}
	return t
}()

func isDigit(b byte) bool { return cls[b]&clDigit != 0 }
func isUpper(b byte) bool { return cls[b]&clUpper != 0 }
func isAlnum(b byte) bool { return cls[b]&clAlnum != 0 }

// isWord reports an identifier byte: a token continues through these.
func isWord(b byte) bool { return cls[b]&clAlnum != 0 || b == '_' }

func lower(b byte) byte {
	if isUpper(b) {
		return b + 'a' - 'A'
	}
	return b
}

// prev returns the byte before i, or a space at the start of the text, so that
// the start of the text counts as a token boundary. A JSON/C escape "\n",
// "\t" or "\r" also counts as a boundary: prompts often carry pasted JSON.
func prev(t string, i int) byte {
	if i <= 0 {
		return ' '
	}
	c := t[i-1]
	if (c == 'n' || c == 't' || c == 'r') && i >= 2 && t[i-2] == '\\' {
		return ' '
	}
	return c
}

// isEscapeLetter reports the letter of a "\n", "\t" or "\r" escape at i.
func isEscapeLetter(t string, i int) bool {
	c := t[i]
	return (c == 'n' || c == 't' || c == 'r') && i > 0 && t[i-1] == '\\'
}

// at returns t[i], or 0 past the end.
func at(t string, i int) byte {
	if i >= len(t) {
		return 0
	}
	return t[i]
}

// skipWord returns the index after the identifier run starting at i; it always
// advances by at least one byte so the main loop makes progress.
func skipWord(t string, i int) int {
	i++
	for i < len(t) && isWord(t[i]) {
		i++
	}
	return i
}

// hasPrefix is strings.HasPrefix written as a byte loop: the prefixes here
// are a few bytes long and mostly fail on the first or second byte, where a
// call to memequal would cost more than the comparison.
func hasPrefix(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if s[i] != p[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains sub, ASCII case-insensitively. sub
// must be lower case. Used only on short candidate windows, never on the text.
func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	c0, u0 := sub[0], upper(sub[0])
	for i := 0; i+n <= len(s); i++ {
		if c := s[i]; c != c0 && c != u0 {
			continue
		}
		if equalFoldTail(s[i+1:i+n], sub[1:]) {
			return true
		}
	}
	return false
}

// equalFoldTail reports whether s equals the lower-case sub, ASCII
// case-insensitively; len(s) == len(sub).
func equalFoldTail(s, sub string) bool {
	for j := 0; j < len(sub); j++ {
		if lower(s[j]) != sub[j] {
			return false
		}
	}
	return true
}

func upper(b byte) byte {
	if cls[b]&clLower != 0 {
		return b - ('a' - 'A')
	}
	return b
}

// foldSet is a fixed list of lower-case needles that containsAny looks for
// in one pass over the haystack, instead of one pass per needle.
type foldSet struct {
	first   [256]bool // first bytes of the needles, in both cases
	byFirst [128][]string
}

func newFoldSet(needles ...string) *foldSet {
	fs := &foldSet{}
	for _, s := range needles {
		c := s[0]
		fs.first[c], fs.first[upper(c)] = true, true
		fs.byFirst[c] = append(fs.byFirst[c], s)
	}
	return fs
}

// containsAny reports whether s contains any needle, ASCII
// case-insensitively.
func (fs *foldSet) containsAny(s string) bool {
	for i := 0; i < len(s); i++ {
		if !fs.first[s[i]] {
			continue
		}
		for _, sub := range fs.byFirst[lower(s[i])] {
			if i+len(sub) <= len(s) && equalFoldTail(s[i+1:i+len(sub)], sub[1:]) {
				return true
			}
		}
	}
	return false
}

// containsAnyLower is containsAny for a haystack that is already lower case.
func (fs *foldSet) containsAnyLower(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= 128 || !fs.first[b[i]] {
			continue
		}
		for _, sub := range fs.byFirst[b[i]] {
			if i+len(sub) <= len(b) && equalBytes(b[i+1:i+len(sub)], sub[1:]) {
				return true
			}
		}
	}
	return false
}
