package pii

import (
	"encoding/base64"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// Test-data generators. Everything they produce is synthetic: check digits
// are computed, key bodies come from a seeded PRNG.

// ibanWith returns cc + check digits + bban with correct ISO 7064 check digits,
// computed independently of the package (math/big over the rearranged number).
func ibanWith(cc, bban string) string {
	var digits strings.Builder
	for _, c := range bban + cc + "00" {
		if c >= 'A' && c <= 'Z' {
			digits.WriteString(big.NewInt(int64(c - 'A' + 10)).String())
		} else {
			digits.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(digits.String(), 10)
	r := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	cd := 98 - r
	return cc + string(rune('0'+cd/10)) + string(rune('0'+cd%10)) + bban
}

// groupBy4 writes an IBAN in print form.
func groupBy4(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// luhnComplete appends the Luhn check digit to prefix.
func luhnComplete(prefix string) string {
	for d := byte('0'); d <= '9'; d++ {
		s := prefix + string(d)
		if luhnRef(s) {
			return s
		}
	}
	panic("unreachable")
}

// luhnRef is an independent Luhn implementation for the generators.
func luhnRef(s string) bool {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

const (
	alphaUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	alphaLower = "abcdefghijklmnopqrstuvwxyz"
	digits     = "0123456789"
	alnum      = alphaUpper + alphaLower + digits
	b64url     = alnum + "-_"
	hexLower   = "0123456789abcdef"
)

type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// str returns n random characters of alphabet, guaranteed to contain a digit
// and a letter when the alphabet has both (real keys practically always do).
func (g *gen) str(alphabet string, n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[g.r.IntN(len(alphabet))]
		}
		s := string(b)
		hasD := strings.ContainsAny(s, digits)
		hasL := strings.ContainsAny(s, alphaUpper+alphaLower)
		if (hasD || !strings.ContainsAny(alphabet, digits)) && (hasL || !strings.ContainsAny(alphabet, alphaUpper+alphaLower)) {
			return s
		}
	}
}

func (g *gen) digitsN(n int) string { return g.str(digits, n) }

func makeJWT(header, payload, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + sig
}

// pemBlock builds a PEM-looking block with random base64 body lines.
func (g *gen) pemBlock(label string, lines int) string {
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----\n")
	for range lines {
		raw := make([]byte, 48)
		for i := range raw {
			raw[i] = byte(g.r.IntN(256))
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	}
	b.WriteString("-----END " + label + "-----")
	return b.String()
}

// counts scans text with all types enabled and returns type -> count.
func counts(t testing.TB, text string) map[string]int {
	t.Helper()
	s, err := NewScanner(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range s.Scan(text, nil) {
		out[f.Type] = f.Count
	}
	return out
}

func TestGenerators(t *testing.T) {
	// The generators must agree with published examples, or the tests built
	// on them would prove nothing.
	if got := ibanWith("GB", "WEST12345698765432"); got != "GB82WEST12345698765432" {
		t.Fatalf("ibanWith GB = %s", got)
	}
	if got := ibanWith("DE", "370400440532013000"); got != "DE89370400440532013000" {
		t.Fatalf("ibanWith DE = %s", got)
	}
	if got := luhnComplete("411111111111111"); got != "4111111111111111" {
		t.Fatalf("luhnComplete = %s", got)
	}
	if got := groupBy4("GB82WEST12345698765432"); got != "GB82 WEST 1234 5698 7654 32" {
		t.Fatalf("groupBy4 = %s", got)
	}
}
