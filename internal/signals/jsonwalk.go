package signals

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// A minimal, allocation-free walker over raw JSON text. gjson unescapes
// every string value it returns into a fresh string, and GetBytes copies the
// result's raw text; on the request hot path both cost one allocation per
// message. This walker hands out raw views into the body instead and the
// extractor unescapes straight into its pooled buffer.
//
// The body has normally been validated by openai.Parse, but nothing here
// trusts that: every index is bounds-checked and malformed input ends the
// walk early instead of panicking.

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string literal starting at
// s[i] == '"', or len(s) when it is unterminated. It jumps from quote to
// quote (strings.IndexByte is vectorised) and counts the backslashes in
// front of each to tell an escaped quote from the closing one.
func skipString(s string, i int) int {
	start := i + 1
	for j := start; j < len(s); {
		q := strings.IndexByte(s[j:], '"')
		if q < 0 {
			return len(s)
		}
		q += j
		n := 0
		for k := q - 1; k >= start && s[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return len(s)
}

// skipValue returns the index just past the JSON value starting at s[i].
func skipValue(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				i = skipString(s, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(s)
	}
	for ; i < len(s); i++ {
		switch s[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(s)
}

// eachMember calls fn with the raw key (quotes included) and raw value of
// each member of the object obj; fn returns false to stop.
func eachMember(obj string, fn func(key, val string) bool) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		ke := skipString(obj, i)
		key := obj[i:ke]
		i = skipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipWS(obj, i+1)
		ve := skipValue(obj, i)
		if ve <= i || !fn(key, obj[i:ve]) {
			return
		}
		i = skipWS(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// eachElem calls fn with the raw text of each element of the array arr.
func eachElem(arr string, fn func(val string) bool) {
	i := skipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	i = skipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return
	}
	for {
		i = skipWS(arr, i)
		ve := skipValue(arr, i)
		if ve <= i || !fn(arr[i:ve]) {
			return
		}
		i = skipWS(arr, ve)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i++
	}
}

// member returns the raw value of the last member of obj named key (JSON
// parsers used by providers keep the last duplicate), or "".
func member(obj, key string) string {
	var out string
	eachMember(obj, func(k, v string) bool {
		if keyIs(k, key) {
			out = v
		}
		return true
	})
	return out
}

// keyIs reports whether the raw key literal (with quotes) decodes to want.
// Keys spelled with escapes ("c\u006fntent") must match too, or a client
// could hide text from the classifiers that the provider still reads.
func keyIs(raw, want string) bool {
	if len(raw) < 2 {
		return false
	}
	in := raw[1 : len(raw)-1]
	if len(in) == len(want) && in == want {
		return true
	}
	if len(in) <= len(want) || len(in) > 6*len(want) {
		return false
	}
	var buf [64]byte
	if len(want) > len(buf) {
		return false
	}
	dec, _, _ := appendUnescaped(buf[:0], raw, len(buf))
	return string(dec) == want
}

// isString reports whether raw is a JSON string literal.
func isString(raw string) bool { return len(raw) >= 2 && raw[0] == '"' }

// stringValue decodes a short raw string literal such as a role or a part
// type into buf without allocating; longer values come back truncated,
// which is fine for the enumerations it is used on.
func stringValue(buf []byte, raw string) string {
	if !isString(raw) {
		return ""
	}
	dec, _, _ := appendUnescaped(buf[:0], raw, cap(buf))
	return bytesString(dec)
}

// appendUnescaped decodes the JSON string literal raw (quotes included) and
// appends it to dst up to limit bytes in total, never splitting a UTF-8
// sequence; once something did not fit nothing more is written, so the
// output is always a prefix of the decoded text. It always reads the whole
// literal and returns the decoded length in bytes and runes, written or not.
func appendUnescaped(dst []byte, raw string, limit int) (out []byte, nbytes, nrunes int) {
	if len(raw) < 2 || raw[0] != '"' {
		return dst, 0, 0
	}
	full := false
	s := raw[1:]
	if s[len(s)-1] == '"' {
		s = s[:len(s)-1]
	}
	// Count the literal as if it had no escapes, in one pass over all of
	// it, then correct for each escape where it is decoded: counting run by
	// run cost more than the counting itself on text with an escape in
	// every paragraph.
	nbytes, nrunes = len(s), runeCount(s)
	for len(s) > 0 {
		// Copy the run up to the next escape in one go.
		j := indexByte(s, '\\')
		if j < 0 {
			j = len(s)
		}
		if j > 0 {
			if !full {
				dst, full = appendBounded(dst, s[:j], limit)
			}
			s = s[j:]
			continue
		}
		// s[0] == '\\'
		if len(s) < 2 {
			// A lone backslash at the end decodes to nothing.
			nbytes--
			nrunes--
			break
		}
		var r rune
		adv := 2
		switch s[1] {
		case 'n':
			r = '\n'
		case 't':
			r = '\t'
		case 'r':
			r = '\r'
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'u':
			r, adv = decodeU(s)
		default: // '"', '\\', '/' and anything malformed
			r = rune(s[1])
		}
		var enc [utf8.UTFMax]byte
		n := utf8.EncodeRune(enc[:], r)
		if adv > len(s) {
			adv = len(s) // cannot happen (decodeU checks), but never slice past the end
		}
		// The adv bytes of the escape, counted above as adv bytes and as
		// many runes (less s[1] if it continues a UTF-8 sequence; the rest
		// is ASCII), decode to n bytes and one rune.
		nbytes += n - adv
		nrunes -= adv - 1
		if s[1]&0xC0 == 0x80 {
			nrunes++
		}
		if !full {
			dst, full = appendBounded(dst, bytesString(enc[:n]), limit)
		}
		s = s[adv:]
	}
	return dst, nbytes, nrunes
}

// decodeU decodes \uXXXX (and a following low surrogate) at the start of s.
func decodeU(s string) (rune, int) {
	r1, ok := hex4(s, 2)
	if !ok {
		return utf8.RuneError, 2
	}
	if utf16.IsSurrogate(r1) {
		if r2, ok := hex4(s, 8); ok && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r1, 6
}

func hex4(s string, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[at : at+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendBounded appends s to dst up to limit bytes in total, backing off to
// a rune boundary so the result stays valid UTF-8 where s was. full is true
// when s did not fit whole.
func appendBounded(dst []byte, s string, limit int) (out []byte, full bool) {
	room := limit - len(dst)
	if len(s) <= room {
		return append(dst, s...), false
	}
	if room <= 0 {
		return dst, true
	}
	cut := room
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return append(dst, s[:cut]...), true
}

// runeCount counts the characters of s as the bytes that do not continue a
// UTF-8 sequence. For valid UTF-8 it equals utf8.RuneCountInString; stray
// continuation bytes are not counted. Pure ASCII, the common case, is
// skipped 32 bytes at a time with one test; words with high bytes are
// counted eight bytes at a time.
func runeCount(s string) int {
	n := len(s)
	i := 0
	for ; i+32 <= len(s); i += 32 {
		b := unsafe.Slice(unsafe.StringData(s[i:]), 32)
		w0 := binary.LittleEndian.Uint64(b[0:])
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		w3 := binary.LittleEndian.Uint64(b[24:])
		if (w0|w1|w2|w3)&0x8080808080808080 == 0 {
			continue
		}
		n -= contBytes(w0) + contBytes(w1) + contBytes(w2) + contBytes(w3)
	}
	for ; i+8 <= len(s); i += 8 {
		n -= contBytes(binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8)))
	}
	for ; i < len(s); i++ {
		if s[i]&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

// contBytes counts the bytes of w that continue a UTF-8 sequence
// (10xxxxxx: bit 7 set, bit 6 clear).
func contBytes(w uint64) int {
	return bits.OnesCount64(w & ^(w << 1) & 0x8080808080808080)
}

func indexByte(s string, c byte) int { return strings.IndexByte(s, c) }

// bytesString views b as a string without copying; b must not change
// while the string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
