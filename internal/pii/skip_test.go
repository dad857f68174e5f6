package pii

import (
	"strings"
	"testing"
)

// The skip loop's shortcuts rest on facts about the detectors' tables; these
// tests fail if a table changes in a way that would make a shortcut wrong, so
// that the shortcut is revisited rather than silently missing findings.
func TestSkipInvariants(t *testing.T) {
	if minShapedWord < 2*8-1 {
		t.Fatalf("minShapedWord %d: a run of that length must cover a whole 8-byte block", minShapedWord)
	}
	for _, r := range keyRules {
		// Short words skip the key prefixes entirely.
		if len(r.prefix)+r.min < minShapedWord {
			t.Errorf("key rule %q: prefix+min body %d < %d", r.prefix, len(r.prefix)+r.min, minShapedWord)
		}
		// A word followed by '.' is looked at only for SendGrid and JWTs.
		if strings.Contains(r.prefix, ".") || inBody(r.body, '.') {
			t.Errorf("key rule %q: a '.' in the prefix or body needs dotToken", r.prefix)
		}
		// A word followed by '-' is looked at only for dashToken words.
		if k := strings.IndexByte(r.prefix, '-'); k >= 0 && !dashToken(r.prefix[:k]) {
			t.Errorf("key rule %q: dashToken misses %q", r.prefix, r.prefix[:k])
		}
		if !strings.Contains(r.prefix, "-") && inBody(r.body, '-') && !dashToken(r.prefix) {
			t.Errorf("key rule %q: dashToken misses a body with dashes", r.prefix)
		}
	}
	for cc, l := range ibanLengths {
		if int(l) < minShapedWord {
			t.Errorf("IBAN %s: length %d < %d", cc, l, minShapedWord)
		}
	}
	// The words dotToken accepts must make the block pass stop.
	if !dotToken("SG") || !dotToken("eyJhbGciOiJ") || !dashToken("eyJhbGciOiJ") {
		t.Error("dotToken or dashToken misses SendGrid or JWT headers")
	}
	for _, w := range []string{"SG", "eyJ"} {
		special := false
		for i := 0; i < len(w); i++ {
			special = special || blk[w[i]]&bSpecial != 0
		}
		if !special {
			t.Errorf("no byte of %q is special for the block pass", w)
		}
	}
	for _, w := range dashWords {
		if !blkHasSpecial(w + "-") {
			t.Errorf("%q: the block pass does not stop at its dash", w)
		}
	}
	// The anchors of the dispatch must be special (or stand-ins must be).
	for _, c := range []byte("@\\-:=0123456789") {
		if blk[c]&bSpecial == 0 {
			t.Errorf("%q is not special for the block pass", c)
		}
	}
	// secretName's three-letter filter assumes parts that start with three
	// lower-case letters.
	for c, parts := range secretNameParts {
		for _, p := range parts {
			if len(p) < 3 || p[0] != byte(c) || !isPartStart(p[0], p[1], p[2]) {
				t.Errorf("secret name part %q does not fit the filter", p)
			}
		}
	}
}

func blkHasSpecial(s string) bool {
	for i := 0; i < len(s); i++ {
		if blk[s[i]]&bSpecial != 0 {
			return true
		}
	}
	return false
}

// TestMasks checks the SWAR byte classifiers against the table classifiers
// for every byte value in every lane.
func TestMasks(t *testing.T) {
	for c := 0; c < 256; c++ {
		for lane := 0; lane < 8; lane++ {
			for _, fill := range []byte{'a', '0', ' ', 0xff, '_'} {
				b := []byte(strings.Repeat(string(fill), 8))
				b[lane] = byte(c)
				x := load64(string(b), 0)
				bit := uint64(0x80) << (8 * lane)
				if got, want := nonWordMask(x)&bit != 0, !isWord(byte(c)); got != want {
					t.Fatalf("nonWordMask(%#x in lane %d) = %v", c, lane, got)
				}
				if got, want := nonDigitMask(x)&bit != 0, !isDigit(byte(c)); got != want {
					t.Fatalf("nonDigitMask(%#x in lane %d) = %v", c, lane, got)
				}
				if got, want := nonHexMask(x)&bit != 0, cls[c]&clHex == 0; got != want {
					t.Fatalf("nonHexMask(%#x in lane %d) = %v", c, lane, got)
				}
			}
		}
	}
	if load64("\x01\x02\x03\x04\x05\x06\x07\x08", 0) != 0x0807060504030201 {
		t.Fatal("load64 is not little-endian")
	}
}

func TestWordEnd(t *testing.T) {
	for _, s := range []string{"a", "abc def", "abcdefgh", "abcdefghi", "abcdefgh_1234567 x", "ab\xffcd", strings.Repeat("x", 40) + ".", "a-b"} {
		for i := 0; i < len(s); i++ {
			if !isWord(s[i]) {
				continue
			}
			want := i
			for want < len(s) && isWord(s[want]) {
				want++
			}
			if got := wordEnd(s, i); got != want {
				t.Errorf("wordEnd(%q, %d) = %d, want %d", s, i, got, want)
			}
		}
	}
}
