package pii

import (
	"math"
	"math/bits"
)

// Secrets assigned to secret-looking names, and passwords in URL userinfo.

const (
	// minSecretLen and maxSecretLen bound an assigned value. Shorter values
	// are mostly flags and numbers; longer ones are blobs we do not judge.
	minSecretLen = 8
	maxSecretLen = 256
	// minSecretEntropy is the Shannon entropy in bits per character that an
	// assigned value needs. Eight distinct characters give exactly 3.0;
	// English words, dates and repeated patterns stay below it, random
	// passwords and keys (hex about 3.7, base64 about 4.5+) lie above.
	minSecretEntropy = 3.0
	// minSecretClasses: the value mixes at least this many of lower case,
	// upper case, digits and other characters.
	minSecretClasses = 2
	maxNameLen       = 64
)

// secretNameParts: a name (lower-cased, with '_', '-' and '.' removed) that
// contains one of these is secret-looking. Indexed by first byte so that a
// name costs about one comparison per byte.
var secretNameParts = [128][]string{
	'p': {"password", "passwd", "passphrase", "pwd", "privatekey"},
	's': {"secret", "signingkey"},
	't': {"token"},
	'a': {"apikey", "accesskey", "accountkey", "authkey", "authorization"},
	'c': {"credential", "clientkey"},
	'e': {"encryptionkey"},
	'm': {"masterkey"},
}

// secretPartStart is a set of the first three letters of the parts, a
// filter in front of the part comparisons: bit (a*26+b)*26+c for "abc".
var secretPartStart = func() (set [(26*26*26 + 63) / 64]uint64) {
	for _, parts := range secretNameParts {
		for _, p := range parts {
			k := trigram(p[0], p[1], p[2])
			set[k>>6] |= 1 << (k & 63)
		}
	}
	return set
}()

// trigram returns the index of three lower-case letters in secretPartStart,
// or -1 if one is not a letter.
func trigram(a, b, c byte) int {
	a, b, c = a-'a', b-'a', c-'a'
	if a >= 26 || b >= 26 || c >= 26 {
		return -1
	}
	return (int(a)*26+int(b))*26 + int(c)
}

func isPartStart(a, b, c byte) bool {
	k := trigram(a, b, c)
	return k >= 0 && secretPartStart[k>>6]>>(k&63)&1 != 0
}

// secretNameExact: short names that are secret-looking only on their own.
var secretNameExact = []string{"pass", "pw", "auth"}

// secretExactLens has bit n set when a secretNameExact entry is n long.
var secretExactLens = func() (m uint64) {
	for _, e := range secretNameExact {
		m |= 1 << len(e)
	}
	return m
}()

// notSecretNameParts: names that mention a secret word but hold metadata about
// it (max_tokens, tokenizer, token_url, secret_name, password_file, ...).
var notSecretNameParts = newFoldSet(
	"tokeniz", "tokens", "url", "uri", "endpoint", "path", "file", "dir",
	"type", "name", "length", "count", "size", "expir", "ttl", "timeout",
	"format", "field", "header", "policy", "prompt", "limit", "usage", "policy",
)

// placeholderParts: values containing these are documentation placeholders
// or templates, not secrets.
var placeholderParts = newFoldSet(
	"example", "xxxx", "****", "...", "changeme", "change_me", "placeholder",
	"redacted", "your", "dummy", "sample", "password", "passwd", "<", ">",
	"${", "{{", "%s", "%(",
)

// assignment checks "name = value", "name: value", "name := value",
// "name => value" and the JSON/YAML/env/INI forms of those, where name ends at
// we. It reports ok and the end of the value when a secret was counted.
func (st *state) assignment(t string, ws, we int) (int, bool) {
	k, ok := st.assignedValue(t, we)
	if !ok {
		return 0, false
	}
	vs, ve, end, quoted, ok := valueAt(t, k)
	// Values shorter than a secret are only interesting as an auth scheme
	// ("Bearer <token>").
	if !ok || (ve-vs < minSecretLen && !isAuthScheme(t[vs:ve])) {
		return 0, false
	}
	// "Authorization: Bearer <token>": judge the token, not the scheme word.
	if !quoted && ve-vs <= 6 && at(t, ve) == ' ' && isAuthScheme(t[vs:ve]) {
		vs, ve, end, quoted, ok = valueAt(t, ve+1)
		if !ok {
			return 0, false
		}
	}
	if vs < ve && (isAlnum(t[vs])) {
		// A shaped credential is reported as what it is, once.
		if _, isKey := st.apiKey(t, vs); isKey {
			return 0, false
		}
		if _, isJWT := st.jwt(t, vs); isJWT {
			return 0, false
		}
	}
	if !secretValue(t[vs:ve], quoted) {
		return 0, false
	}
	st.add(tSecret)
	return end, true
}

// assignedValue is the cheap part of assignment: it finds the assignment
// operator after the name ending at we and returns where the value starts,
// with ok=false unless the value is long enough to matter and the name looks
// secret. The scanner's skip loop calls it too, to pass over every other
// "name: value" without dispatching.
func (st *state) assignedValue(t string, we int) (int, bool) {
	n := len(t)
	k := we
	if c := at(t, k); c == '"' || c == '\'' || c == '`' {
		k++
	}
	for k < n && (t[k] == ' ' || t[k] == '\t') {
		k++
	}
	switch at(t, k) {
	case '=':
		if at(t, k+1) == '=' {
			return 0, false
		}
		k++
		if at(t, k) == '>' {
			k++
		}
	case ':':
		k++
		if at(t, k) == ':' {
			return 0, false
		}
		if at(t, k) == '=' {
			k++
		}
	default:
		return 0, false
	}
	for k < n && (t[k] == ' ' || t[k] == '\t') {
		k++
	}
	// Cheap checks first: a value shorter than "Basic" cannot matter, and the
	// name must look secret before the value is read in full. This keeps
	// "a:a:a:..." inputs from re-reading long values for every colon.
	if peekValue(t, k) < 5 || !st.secretName(t, we) {
		return 0, false
	}
	return k, true
}

// peekValue returns the length of the value at k, counting at most
// minSecretLen bytes.
func peekValue(t string, k int) int {
	if c := at(t, k); c == '"' || c == '\'' || c == '`' {
		j := k + 1
		for j < len(t) && j-k <= minSecretLen && t[j] != c && t[j] != '\n' {
			j++
		}
		return j - k - 1
	}
	j := k
	for j < len(t) && j-k < minSecretLen && !valueStop(t[j]) {
		j++
	}
	return j - k
}

func isAuthScheme(s string) bool {
	switch len(s) {
	case 5:
		return containsFold(s, "basic") || containsFold(s, "token")
	case 6:
		return containsFold(s, "bearer")
	}
	return false
}

// valueAt reads the value starting at k: quoted up to the matching quote on
// the same line, or unquoted up to whitespace or a delimiter. An unquoted
// value followed by '(' is a function call, not a literal.
func valueAt(t string, k int) (vs, ve, end int, quoted, ok bool) {
	n := len(t)
	if k >= n {
		return 0, 0, 0, false, false
	}
	if q := t[k]; q == '"' || q == '\'' || q == '`' {
		j := k + 1
		for j < n && t[j] != q && t[j] != '\n' && j-k <= maxSecretLen {
			j++
		}
		if at(t, j) != q {
			return 0, 0, 0, false, false
		}
		return k + 1, j, j + 1, true, true
	}
	j := k
	for lim := min(n, k+maxSecretLen+1); j+8 <= lim; j += 8 { // eight bytes per step
		b := t[j : j+8]
		if valueStops[b[0]]|valueStops[b[1]]|valueStops[b[2]]|valueStops[b[3]]|
			valueStops[b[4]]|valueStops[b[5]]|valueStops[b[6]]|valueStops[b[7]] != 0 {
			break
		}
	}
	for j < n && j-k <= maxSecretLen && !valueStop(t[j]) {
		j++
	}
	if at(t, j) == '(' {
		return 0, 0, 0, false, false
	}
	return k, j, j, false, true
}

func valueStop(c byte) bool { return valueStops[c] != 0 }

var valueStops = func() (a [256]uint8) {
	for _, c := range " \t\r\n,;()&\"'`<>[]{}" {
		a[c] = 1
	}
	return a
}()

// secretName is the package-level secretName with a one-entry memo: the skip
// loop asks about a name, and the dispatch then asks again.
func (st *state) secretName(t string, we int) bool {
	if m := &st.name; m.pos1 != we+1 {
		m.ok = secretName(t, we)
		m.pos1 = we + 1
	}
	return st.name.ok
}

// secretName reports whether the identifier ending at we looks like it holds
// a secret. It reads back over letters, digits, '_', '-' and '.', so that
// "spring.datasource.password", "X-Api-Key" and "DB_PASSWORD" all count.
func secretName(t string, we int) bool {
	// One walk back over the name, normalising it into the end of buf and
	// looking for the first three letters of a part on the way: most names
	// have none and are done here.
	var buf [maxNameLen]byte
	m := len(buf) // the name is buf[m:]
	hit := false
	for j := we; j > 0 && we-j < maxNameLen; j-- {
		c := t[j-1]
		if !isWord(c) && c != '-' && c != '.' {
			break
		}
		if c == '_' || c == '-' || c == '.' {
			continue
		}
		m--
		buf[m] = lower(c)
		if m+2 < len(buf) && isPartStart(buf[m], buf[m+1], buf[m+2]) {
			hit = true
		}
	}
	name := buf[m:]
	if !hit && secretExactLens>>len(name)&1 == 0 {
		return false
	}
	found := false
	for _, e := range secretNameExact {
		if len(name) == len(e) && contains(name, e) {
			found = true
		}
	}
	for i := 0; i+2 < len(name) && !found; i++ {
		// name holds only ASCII letters and digits.
		if !isPartStart(name[i], name[i+1], name[i+2]) {
			continue
		}
		for _, p := range secretNameParts[name[i]&127] {
			if len(name)-i >= len(p) && equalBytes(name[i:i+len(p)], p) {
				found = true
				break
			}
		}
	}
	if !found {
		return false
	}
	return !notSecretNameParts.containsAnyLower(name)
}

func contains(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if b[i] == sub[0] && equalBytes(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func equalBytes(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

// secretValue decides whether an assigned value is a secret literal.
func secretValue(v string, quoted bool) bool {
	if len(v) < minSecretLen || len(v) > maxSecretLen {
		return false
	}
	switch v[0] {
	case '$', '%', '{', '<', '[', '(', '/', '~', '@':
		return false // env reference, template, path, decorator
	}
	if hasPrefix(v, "./") || hasPrefix(v, "-----BEGIN") || containsFold(v, "://") {
		return false // relative path, PEM (reported as private_key), URL (userinfo checked separately)
	}
	if placeholderParts.containsAny(v) {
		return false
	}
	var lowerC, upperC, digitC, otherC bool
	for i := 0; i < len(v); i++ {
		x := cls[v[i]]
		switch {
		case x&clLower != 0:
			lowerC = true
		case x&clUpper != 0:
			upperC = true
		case x&clDigit != 0:
			digitC = true
		default:
			otherC = true
		}
	}
	if !quoted && !digitC && identLike(v) {
		return false // settings.SECRET_KEY, os.environ, self.password
	}
	classes := 0
	for _, b := range [4]bool{lowerC, upperC, digitC, otherC} {
		if b {
			classes++
		}
	}
	if classes < minSecretClasses {
		return false
	}
	return entropyAtLeast(v, minSecretEntropy-1e-9)
}

func identLike(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if cls[c]&clAlpha == 0 && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// entropyAtLeast reports whether the Shannon entropy of s, in bits per byte,
// is at least min. The entropy is summed exactly as a plain loop over the 256
// byte counts would sum it, so the decision is the same to the last bit; the
// savings are in what is not done: absent bytes are not visited, log2 is
// computed once per distinct count rather than once per distinct byte, and
// fewer than 2^min distinct bytes cannot reach min at all.
func entropyAtLeast(s string, min float64) bool {
	var cnt [256]uint16
	var present [4]uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		cnt[c]++
		present[c>>6] |= 1 << (c & 63)
	}
	distinct := 0
	for _, m := range present {
		distinct += bits.OnesCount64(m)
	}
	if math.Log2(float64(distinct)) < min-1e-6 {
		return false // the entropy is at most log2(distinct)
	}
	n := float64(len(s))
	h := 0.0
	var memoC [8]uint16
	var memoL [8]float64
	memo := 0
	for w, m := range present {
		for ; m != 0; m &= m - 1 {
			c := cnt[w<<6|bits.TrailingZeros64(m)]
			p := float64(c) / n
			k := 0
			for k < memo && memoC[k] != c {
				k++
			}
			var l float64
			if k < memo {
				l = memoL[k]
			} else {
				l = math.Log2(p)
				if memo < len(memoC) {
					memoC[memo], memoL[memo] = c, l
					memo++
				}
			}
			h -= p * l
		}
	}
	return h >= min
}

// urlUserinfo is called with k just after "://". If the authority holds
// "user:password@", a password that is not empty, not a placeholder and not
// the user name repeated (postgres:postgres, the default-credentials pattern
// of local setups) is counted as a secret. It returns the index after '@' so
// that the host is still scanned (for an IP) but "user@host" is not taken for
// an e-mail address.
func (st *state) urlUserinfo(t string, k int) int {
	atSign := -1
	for j := k; j < len(t) && j-k < maxSecretLen; j++ {
		c := t[j]
		if c == '/' || c == '?' || c == '#' || c <= ' ' || c == '"' || c == '\'' || c == '`' || c == '<' || c == '>' {
			break
		}
		if c == '@' {
			atSign = j
		}
	}
	if atSign < 0 {
		return k
	}
	ui := t[k:atSign]
	for c := 0; c < len(ui); c++ {
		if ui[c] != ':' {
			continue
		}
		user, pass := ui[:c], ui[c+1:]
		if len(pass) >= 3 && pass != user && !placeholderParts.containsAny(pass) && !urlPassPlaceholder(pass) {
			st.add(tSecret)
		}
		break
	}
	return atSign + 1
}

var urlPassWords = []string{"pass", "pwd", "secret", "pw", "pa55word"}

// urlPassPlaceholder rejects the usual stand-ins in connection-string docs.
func urlPassPlaceholder(p string) bool {
	switch p[0] {
	case '$', '%', '{', '<', '[', '*', ':':
		return true
	}
	for _, w := range urlPassWords {
		if len(p) == len(w) && containsFold(p, w) {
			return true
		}
	}
	return false
}
