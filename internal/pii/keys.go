package pii

import "math/bits"

// Vendor key and token shapes, JWTs and PEM private keys.

type bodyKind uint8

const (
	bodyAlnum      bodyKind = iota // A-Z a-z 0-9
	bodyB64URL                     // A-Z a-z 0-9 _ -
	bodyUpperDigit                 // A-Z 0-9
	bodyHex                        // 0-9 a-f A-F
	bodyAlnumUnder                 // A-Z a-z 0-9 _
	bodyAlnumDash                  // A-Z a-z 0-9 -
	bodyAlpha                      // A-Z a-z
	numBodyKinds
)

func inBody(k bodyKind, c byte) bool {
	x := cls[c]
	switch k {
	case bodyAlnum:
		return x&clAlnum != 0
	case bodyB64URL:
		return x&clB64URL != 0
	case bodyUpperDigit:
		return x&(clUpper|clDigit) != 0
	case bodyHex:
		return x&clHex != 0
	case bodyAlnumUnder:
		return x&clAlnum != 0 || c == '_'
	case bodyAlnumDash:
		return x&clAlnum != 0 || c == '-'
	case bodyAlpha:
		return x&clAlpha != 0
	}
	return false
}

const (
	needDigitLetter = 1 << iota // body has a digit and a letter
	needUpperLower              // body has an upper- and a lower-case letter
)

// keyRule is one vendor shape: a literal prefix and a body of min..max bytes
// of one character class, ending at a token boundary.
type keyRule struct {
	prefix   string
	body     bodyKind
	min, max int // max 0: unbounded (capped by maxKeyBody)
	need     uint8
}

const maxKeyBody = 512

// minDistinct rejects placeholder bodies such as "sk-aaaaaaaaaaaaaaaaaaaa1":
// real keys are random, and 20 random characters from a 36+ symbol alphabet
// almost never have fewer than 8 distinct ones.
const minDistinct = 8

var keyRules = []keyRule{
	{prefix: "sk-", body: bodyB64URL, min: 20, need: needDigitLetter},     // OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-), OpenRouter
	{prefix: "sk_live_", body: bodyAlnum, min: 20, need: needDigitLetter}, // Stripe secret key
	{prefix: "rk_live_", body: bodyAlnum, min: 20, need: needDigitLetter}, // Stripe restricted key
	{prefix: "shpat_", body: bodyHex, min: 32, max: 32, need: needDigitLetter},
	{prefix: "shpss_", body: bodyHex, min: 32, max: 32, need: needDigitLetter},
	{prefix: "shpca_", body: bodyHex, min: 32, max: 32, need: needDigitLetter},
	{prefix: "shppa_", body: bodyHex, min: 32, max: 32, need: needDigitLetter}, // Shopify
	{prefix: "ghp_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter},
	{prefix: "gho_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter},
	{prefix: "ghu_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter},
	{prefix: "ghs_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter},
	{prefix: "ghr_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter}, // GitHub classic tokens
	{prefix: "github_pat_", body: bodyAlnumUnder, min: 40, need: needDigitLetter},
	{prefix: "glpat-", body: bodyB64URL, min: 20, need: needDigitLetter}, // GitLab
	{prefix: "xoxb-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xoxp-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xoxa-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xoxs-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xoxe-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xoxr-", body: bodyAlnumDash, min: 20, need: needDigitLetter},
	{prefix: "xapp-", body: bodyAlnumDash, min: 20, need: needDigitLetter}, // Slack
	{prefix: "AKIA", body: bodyUpperDigit, min: 16, max: 16},
	{prefix: "ASIA", body: bodyUpperDigit, min: 16, max: 16},                 // AWS access key ids
	{prefix: "AIza", body: bodyB64URL, min: 35, max: 35},                     // Google API key
	{prefix: "hf_", body: bodyAlpha, min: 30, max: 40, need: needUpperLower}, // Hugging Face
	{prefix: "npm_", body: bodyAlnum, min: 36, max: 36, need: needDigitLetter},
	{prefix: "pypi-AgEIcHlwaS5vcmc", body: bodyB64URL, min: 50},
	{prefix: "dop_v1_", body: bodyHex, min: 64, max: 64, need: needDigitLetter}, // DigitalOcean
}

// rulesByFirst indexes keyRules by the first byte of the prefix so that an
// ordinary word costs one array load.
var rulesByFirst = func() (t [128][]keyRule) {
	for _, r := range keyRules {
		t[r.prefix[0]] = append(t[r.prefix[0]], r)
	}
	return t
}()

// runMemo remembers, per character class, the last maximal run measured, so
// that inputs like "sk-sk-sk-..." or "eyJ-eyJ-..." do not rescan the same run
// from every prefix: each byte is measured at most once per class.
type runMemo [numBodyKinds]struct{ start, end int }

// runEnd returns the end of the maximal run of class k starting at s.
func (m *runMemo) runEnd(t string, s int, k bodyKind) int {
	r := &m[k]
	if r.end > 0 && r.start <= s && s <= r.end {
		return r.end
	}
	j := s
	bit := uint8(1) << k
	for j+8 <= len(t) { // eight bytes per step through a key body
		b := t[j : j+8]
		if bodyCls[b[0]]&bodyCls[b[1]]&bodyCls[b[2]]&bodyCls[b[3]]&bodyCls[b[4]]&bodyCls[b[5]]&bodyCls[b[6]]&bodyCls[b[7]]&bit == 0 {
			break
		}
		j += 8
	}
	for j < len(t) && bodyCls[t[j]]&bit != 0 {
		j++
	}
	r.start, r.end = s, j
	return j
}

// bodyCls[c] has bit k set when c is in body class k (inBody as a table).
var bodyCls = func() (a [256]uint8) {
	for c := 0; c < 256; c++ {
		for k := range numBodyKinds {
			if inBody(k, byte(c)) {
				a[c] |= 1 << k
			}
		}
	}
	return a
}()

// apiKeyAt matches a vendor key starting at i.
func apiKeyAt(t string, i int, memo *runMemo) (int, bool) {
	c := t[i]
	if c >= 128 {
		return 0, false
	}
	if c == 'S' && hasPrefix(t[i:], "SG.") {
		return sendgridAt(t, i, memo)
	}
	rules := rulesByFirst[c]
	if len(rules) == 0 || i+1 >= len(t) {
		return 0, false
	}
	c2 := t[i+1]
	for _, r := range rules {
		if r.prefix[1] != c2 || !hasPrefix(t[i:], r.prefix) {
			continue
		}
		if end, ok := keyBody(t, i+len(r.prefix), r, memo); ok {
			return end, true
		}
	}
	return 0, false
}

func keyBody(t string, s int, r keyRule, memo *runMemo) (int, bool) {
	j := memo.runEnd(t, s, r.body)
	l := j - s
	if l < r.min || (r.max > 0 && l > r.max) || l > maxKeyBody {
		return 0, false
	}
	if c := at(t, j); isWord(c) || c == '-' {
		return 0, false
	}
	if !bodyLooksRandom(t[s:j], r.need) {
		return 0, false
	}
	return j, true
}

// bodyLooksRandom rejects documentation placeholders: too few distinct
// characters, "EXAMPLE" (AWS's documented keys end in it) or runs of x.
func bodyLooksRandom(b string, need uint8) bool {
	var seen [2]uint64
	var x uint8 // union of the byte classes
	for i := 0; i < len(b); i++ {
		c := b[i] & 127
		seen[c>>6] |= 1 << (c & 63)
		x |= cls[b[i]]
	}
	if bits.OnesCount64(seen[0])+bits.OnesCount64(seen[1]) < minDistinct {
		return false
	}
	digit, up, low := x&clDigit != 0, x&clUpper != 0, x&clLower != 0
	if need&needDigitLetter != 0 && (!digit || !(up || low)) {
		return false
	}
	if need&needUpperLower != 0 && (!up || !low) {
		return false
	}
	return !keyPlaceholders.containsAny(b)
}

var keyPlaceholders = newFoldSet("example", "xxxxx")

// sendgridAt matches SG.<22 base64url>.<43 base64url>.
func sendgridAt(t string, i int, memo *runMemo) (int, bool) {
	j := i + 3
	a := memo.runEnd(t, j, bodyB64URL)
	if a-j != 22 || at(t, a) != '.' {
		return 0, false
	}
	b := memo.runEnd(t, a+1, bodyB64URL)
	if b-(a+1) != 43 || isWord(at(t, b)) {
		return 0, false
	}
	if !bodyLooksRandom(t[j:b], needDigitLetter) {
		return 0, false
	}
	return b, true
}

const (
	minJWTHeader = 10   // base64url of `{"alg":"x"}` is longer than this
	maxJWTHeader = 1024 // decoded into a stack buffer
)

// jwtAt matches a compact JWS: three base64url segments separated by dots,
// the first starting "eyJ" (base64url of `{"`), the payload at least 4 bytes,
// the signature possibly empty (alg "none"); the header must decode to a JSON
// object that mentions "alg". A fourth segment (JWE) is not a match.
func jwtAt(t string, i int, memo *runMemo) (int, bool) {
	if !hasPrefix(t[i:], "eyJ") {
		return 0, false
	}
	h := memo.runEnd(t, i, bodyB64URL)
	if h-i < minJWTHeader || h-i > maxJWTHeader || at(t, h) != '.' {
		return 0, false
	}
	p := memo.runEnd(t, h+1, bodyB64URL)
	if p-(h+1) < 4 || at(t, p) != '.' {
		return 0, false
	}
	s := memo.runEnd(t, p+1, bodyB64URL)
	if at(t, s) == '.' && cls[at(t, s+1)]&clB64URL != 0 {
		return 0, false
	}
	if !jwtHeaderOK(t[i:h]) {
		return 0, false
	}
	return s, true
}

var b64val = func() (t [256]int8) {
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

func jwtHeaderOK(seg string) bool {
	var buf [maxJWTHeader * 3 / 4]byte
	n, acc, bits := 0, 0, 0
	for i := 0; i < len(seg); i++ {
		v := b64val[seg[i]]
		if v < 0 {
			return false
		}
		acc = acc<<6 | int(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			buf[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	d := buf[:n]
	k := 0
	for k < len(d) && (d[k] == ' ' || d[k] == '\t' || d[k] == '\r' || d[k] == '\n') {
		k++
	}
	return k < len(d) && d[k] == '{' && contains(d[k:], `"alg"`)
}

const (
	pemBegin   = "-----BEGIN "
	pemEndMark = "-----END"
	// pemBodyWindow is how far after the BEGIN line we look for key material
	// (past Proc-Type/DEK-Info or PGP armor headers).
	pemBodyWindow = 512
	// pemMinBody base64 characters in a row make the block a real key rather
	// than a sentence that mentions the header.
	pemMinBody = 24
	// pemMaxSkip bounds how far we jump to the END marker.
	pemMaxSkip = 16 << 10
)

// dash handles "-----BEGIN <label>-----" where label ends in "PRIVATE KEY"
// (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain PKCS#8) or "PRIVATE KEY BLOCK"
// (PGP), followed within 512 bytes by at least 24 base64 characters in a row.
// The block counts once; the scan resumes after its END marker.
func (st *state) dash(t string, i int) int {
	if !hasPrefix(t[i:], pemBegin) {
		return i + 1
	}
	j := i + len(pemBegin)
	ls := j
	for j < len(t) && j-ls < 64 && (isUpper(t[j]) || t[j] == ' ' || isDigit(t[j])) {
		j++
	}
	label := t[ls:j]
	if !hasPrefix(t[j:], "-----") {
		return j
	}
	if !hasSuffix(label, "PRIVATE KEY") && !hasSuffix(label, "PRIVATE KEY BLOCK") {
		return j
	}
	j += 5
	if !pemBody(t, j) {
		return j
	}
	st.add(tPrivateKey)
	if e := st.nextPEMEnd(t, j); e >= 0 && e-j <= pemMaxSkip {
		return e + len(pemEndMark)
	}
	return j
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func pemBody(t string, j int) bool {
	run := 0
	for k := j; k < len(t) && k-j < pemBodyWindow; k++ {
		if cls[t[k]]&clB64 != 0 {
			run++
			if run >= pemMinBody {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

func (st *state) nextPEMEnd(t string, from int) int {
	if st.pemEnd == pemNone {
		return -1
	}
	if st.pemEnd == pemUnknown || st.pemEnd < from {
		st.pemEnd = pemNone
		for k := from; k+len(pemEndMark) <= len(t); k++ {
			if t[k] == '-' && t[k:k+len(pemEndMark)] == pemEndMark {
				st.pemEnd = k
				break
			}
		}
	}
	return st.pemEnd
}
