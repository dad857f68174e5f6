package injection

// text is what the prefix helpers read: the prompt or a decoded payload (a
// string; decoded payloads are stack buffers viewed as strings) or a word
// buffer ([]byte).
type text interface{ ~string | ~[]byte }

const runeError = 0xFFFD

// decodeRune decodes the UTF-8 sequence at s[i] (s[i] >= 0x80). Invalid or
// truncated sequences, overlong forms and surrogates decode as U+FFFD with
// size 1, so bad input is skipped byte by byte and never panics.
func decodeRune(s string, i int) (rune, int) {
	n := len(s)
	c0 := s[i]
	cont := func(k int) (rune, bool) {
		if i+k >= n || s[i+k]&0xC0 != 0x80 {
			return 0, false
		}
		return rune(s[i+k] & 0x3F), true
	}
	switch {
	case c0 >= 0xC2 && c0 <= 0xDF:
		if b1, ok := cont(1); ok {
			return rune(c0&0x1F)<<6 | b1, 2
		}
	case c0 >= 0xE0 && c0 <= 0xEF:
		b1, ok1 := cont(1)
		b2, ok2 := cont(2)
		if ok1 && ok2 {
			r := rune(c0&0x0F)<<12 | b1<<6 | b2
			if r >= 0x800 && (r < 0xD800 || r > 0xDFFF) {
				return r, 3
			}
		}
	case c0 >= 0xF0 && c0 <= 0xF4:
		b1, ok1 := cont(1)
		b2, ok2 := cont(2)
		b3, ok3 := cont(3)
		if ok1 && ok2 && ok3 {
			r := rune(c0&0x07)<<18 | b1<<12 | b2<<6 | b3
			if r >= 0x10000 && r <= 0x10FFFF {
				return r, 4
			}
		}
	}
	return runeError, 1
}

// accentFold maps U+00C0..U+017F to the ASCII letter it decorates ('*' for
// the few that are not letters), generated from the Unicode decompositions.
const accentFold = "aaaaaaaceeeeiiiidnooooo*ouuuuytsaaaaaaaceeeeiiiidnooooo*ouuuuyty" +
	"aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiiijjkkkllllllllllnnnnnnnnnoooooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs"

// lookalikes: Cyrillic and Greek letters that render like Latin ones. Mixing
// them into English words is a common filter-evasion trick.
var lookalikes = map[rune]byte{
	// Cyrillic lower
	0x0430: 'a', 0x0435: 'e', 0x043E: 'o', 0x0440: 'p', 0x0441: 'c', 0x0443: 'y', 0x0445: 'x',
	0x0456: 'i', 0x0458: 'j', 0x0455: 's', 0x0501: 'd', 0x04BB: 'h', 0x051B: 'q', 0x051D: 'w',
	0x0432: 'b', 0x043A: 'k', 0x043C: 'm', 0x043D: 'h', 0x0442: 't', 0x0433: 'r',
	// Cyrillic upper
	0x0410: 'A', 0x0412: 'B', 0x0415: 'E', 0x041A: 'K', 0x041C: 'M', 0x041D: 'H', 0x041E: 'O',
	0x0420: 'P', 0x0421: 'C', 0x0422: 'T', 0x0425: 'X', 0x0423: 'Y', 0x0406: 'I', 0x0408: 'J', 0x0405: 'S',
	// Greek lower
	0x03B1: 'a', 0x03B5: 'e', 0x03BF: 'o', 0x03B9: 'i', 0x03BA: 'k', 0x03BD: 'v', 0x03C1: 'p',
	0x03C4: 't', 0x03C5: 'u', 0x03C7: 'x',
	// Greek upper
	0x0391: 'A', 0x0392: 'B', 0x0395: 'E', 0x0397: 'H', 0x0399: 'I', 0x039A: 'K', 0x039C: 'M',
	0x039D: 'N', 0x039F: 'O', 0x03A1: 'P', 0x03A4: 'T', 0x03A7: 'X', 0x03A5: 'Y', 0x0396: 'Z',
}

// fold maps a non-ASCII rune to the ASCII letter or digit it stands for.
// confusable is set for forms whose use in running English text is an
// obfuscation signal (full-width, mathematical, circled, look-alikes), not
// for ordinary accented letters.
func fold(r rune) (b byte, confusable bool) {
	switch {
	case r >= 0xC0 && r <= 0x17F:
		if c := accentFold[r-0xC0]; c != '*' {
			return c, false
		}
		return 0, false
	case r >= 0xFF10 && r <= 0xFF19: // full-width digits
		return byte(r-0xFF10) + '0', true
	case r >= 0xFF21 && r <= 0xFF3A:
		return byte(r-0xFF21) + 'A', true
	case r >= 0xFF41 && r <= 0xFF5A:
		return byte(r-0xFF41) + 'a', true
	case r >= 0x1D400 && r <= 0x1D6A3: // mathematical bold, italic, script, fraktur, ... A-Z a-z
		k := (r - 0x1D400) % 52
		if k < 26 {
			return byte(k) + 'A', true
		}
		return byte(k-26) + 'a', true
	case r >= 0x1D7CE && r <= 0x1D7FF: // mathematical digits
		return byte((r-0x1D7CE)%10) + '0', true
	case r >= 0x24B6 && r <= 0x24CF: // circled capitals
		return byte(r-0x24B6) + 'A', true
	case r >= 0x24D0 && r <= 0x24E9:
		return byte(r-0x24D0) + 'a', true
	case r >= lookalikeLo && r <= lookalikeHi:
		if c := lookalikeTable[r-lookalikeLo]; c != 0 {
			return c, true
		}
	}
	return 0, false
}

// lookalikeTable flattens lookalikes over U+0370..U+052F (Greek, Cyrillic)
// for a branch-free lookup; genuine Greek or Russian text is all in range.
const lookalikeLo, lookalikeHi = 0x0370, 0x052F

var lookalikeTable = func() (t [lookalikeHi - lookalikeLo + 1]byte) {
	for r, c := range lookalikes {
		t[r-lookalikeLo] = c
	}
	return t
}()

// Invisible characters: zero-width spaces and joiners, word joiner and
// invisible operators, BOM, soft hyphen, combining grapheme joiner, Hangul
// and Mongolian fillers.
func isInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200D, r >= 0x2060 && r <= 0x2064:
		return true
	}
	switch r {
	case 0x00AD, 0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0:
		return true
	}
	return false
}

// isBidiControl: embeddings, overrides and isolates (the "Trojan Source"
// characters). Plain LRM/RLM marks are not counted.
func isBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
}

// isIgnorable: code points that are skipped without counting: LRM/RLM,
// variation selectors, combining diacritics (so "i\u0307gnore" still reads
// as "ignore").
func isIgnorable(r rune) bool {
	return r == 0x200E || r == 0x200F || r >= 0xFE00 && r <= 0xFE0F || r >= 0x0300 && r <= 0x036F
}

// isOtherLetter reports letters of other scripts (kept inside a token so that
// they never match the English vocabulary). A coarse range check is enough:
// everything that is not punctuation, symbols or spaces in the BMP blocks
// below is treated as a letter.
func isOtherLetter(r rune) bool {
	switch {
	case r >= 0x0180 && r <= 0x1FFF: // Latin ext-B .. Greek extended (incl. Cyrillic, Arabic, Hebrew, Indic, ...)
		return true
	case r >= 0x2C00 && r <= 0x2DFF, r >= 0x3040 && r <= 0x9FFF, r >= 0xA000 && r <= 0xD7AF:
		return true // Glagolitic.., kana, CJK, Yi, Hangul
	case r >= 0xF900 && r <= 0xFAFF, r >= 0x20000 && r <= 0x3FFFF:
		return true
	}
	return false
}
