package signals

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// normalizeRef is the definition normalize implements, one rune at a time.
func normalizeRef(dst, text []byte) []byte {
	space := len(dst) > 0 && dst[len(dst)-1] == ' '
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRune(text[i:])
		i += n
		if r < utf8.RuneSelf && n == 1 {
			switch {
			case r >= 'A' && r <= 'Z':
				r += 'a' - 'A'
			case r >= '0' && r <= '9':
				r = '0'
			case r <= ' ' || r == 0x7f:
				if !space {
					dst = append(dst, ' ')
					space = true
				}
				continue
			}
			dst = append(dst, byte(r))
			space = false
			continue
		}
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

// handFeaturesRef is the definition handFeatures implements, byte by byte.
func handFeaturesRef(h *[numHand]float32, text []byte) {
	n := min(len(text), windowHead+windowTail)
	var symbols, digits, lines, quotes int
	var question, arith bool
	for i := 0; i < n; i++ {
		c := text[i]
		switch c {
		case '{', '}', '(', ')', ';', '=', '<', '>', '[', ']', '|', '&', '$', '#', '%':
			symbols++
		case '\n':
			lines++
		case '?':
			question = true
		case '"', '\'':
			quotes++
		case '+', '-', '*', '/', '^':
			if i > 0 && i+1 < n && isDigitOrSpace(text[i-1]) && isDigitOrSpace(text[i+1]) && nearDigit(text, i, n) {
				arith = true
			}
		}
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if strings.Contains(string(text), "```") {
		h[0] = 1
	}
	fn := float32(max(n, 1))
	h[1] = min(1, 8*float32(symbols)/fn)
	h[2] = min(1, 4*float32(digits)/fn)
	if question {
		h[3] = 1
	}
	h[4] = min(1, float32(math.Log2(1+float64(len(text))))/13)
	h[5] = min(1, float32(lines)/20)
	if arith {
		h[6] = 1
	}
	h[7] = min(1, float32(quotes)/8)
}

var featureAlphabet = []string{
	"a", "Z", "Q", "q", " ", "  ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "é", "É", "€", "😀", "\u00a0", "\u2003", "٣", "Σ",
	"\xff", "\xc3", "0", "7", "9", "42", "3 * 4", "(2+2)", "1-2", "x^2", "?", "'", "\"", "{", "}", ";", "=", "<", ">", "[", "]",
	"|", "&", "$", "#", "%", "```", "`", "-", "+", "*", "/", "^", "the ", "Summarize ", "TRANSLATE", "don't", "foo_bar",
}

func featureText(rng *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		b = append(b, featureAlphabet[rng.IntN(len(featureAlphabet))]...)
	}
	return b
}

func TestNormalizeMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	var got, want []byte
	for i := range 5000 {
		text := featureText(rng, i%300)
		for _, prefix := range []string{"", " ", "x"} {
			got = normalize(append(got[:0], prefix...), text)
			want = normalizeRef(append(want[:0], prefix...), text)
			if string(got) != string(want) {
				t.Fatalf("normalize(%q, %q) = %q, want %q", prefix, text, got, want)
			}
		}
	}
}

func TestHandFeaturesMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for i := range 5000 {
		text := featureText(rng, i%1200)
		var got, want [numHand]float32
		handFeatures(&got, text)
		handFeaturesRef(&want, text)
		if got != want {
			t.Fatalf("handFeatures(%q) = %v, want %v", text, got, want)
		}
	}
}

func FuzzFeatureDefinitions(f *testing.F) {
	for _, s := range []string{"", "Hello  World\t\n42", "3 * 4 = ?", "```go\nx := 1\n```", "É\u00a0é", "\xff\x00\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		got := normalize([]byte{' '}, text)
		want := normalizeRef([]byte{' '}, text)
		if string(got) != string(want) {
			t.Fatalf("normalize(%q) = %q, want %q", text, got, want)
		}
		var hg, hw [numHand]float32
		handFeatures(&hg, text)
		handFeaturesRef(&hw, text)
		if hg != hw {
			t.Fatalf("handFeatures(%q) = %v, want %v", text, hg, hw)
		}
	})
}
