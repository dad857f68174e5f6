package pii

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTypes(t *testing.T) {
	got := Types()
	want := []string{APIKey, CreditCard, Email, IBAN, IPv4, IPv6, JWT, Phone, PrivateKey, Secret, SSN}
	if !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	if !slices.IsSorted(got) {
		t.Fatalf("Types() not sorted: %v", got)
	}
	got[0] = "mutated"
	if Types()[0] != APIKey {
		t.Fatal("Types() returned shared state")
	}
}

func TestIsCredential(t *testing.T) {
	creds := map[string]bool{APIKey: true, PrivateKey: true, JWT: true, Secret: true}
	for _, ty := range Types() {
		if IsCredential(ty) != creds[ty] {
			t.Errorf("IsCredential(%q) = %v", ty, !creds[ty])
		}
	}
	if IsCredential("nope") {
		t.Error("IsCredential(unknown) = true")
	}
}

func TestNewScannerUnknownType(t *testing.T) {
	_, err := NewScanner([]string{Email, "passport"})
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"passport"`) {
		t.Errorf("error %q does not name the unknown type", msg)
	}
	for _, ty := range Types() {
		if !strings.Contains(msg, ty) {
			t.Errorf("error %q does not list valid type %q", msg, ty)
		}
	}
}

const mixed = "mail jane.doe@example.com, call 415-555-0134, card 4111 1111 1111 1111, " +
	"mail again ops@example.org, ip 192.0.2.1"

func TestScanSortedAndCounted(t *testing.T) {
	s, err := NewScanner(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Scan(mixed, nil)
	want := []Finding{{CreditCard, 1}, {Email, 2}, {IPv4, 1}, {Phone, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("Scan = %v, want %v", got, want)
	}
}

func TestScanEnabledSubset(t *testing.T) {
	s, err := NewScanner([]string{Phone, Email})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Scan(mixed, nil)
	want := []Finding{{Email, 2}, {Phone, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("Scan = %v, want %v", got, want)
	}
}

func TestScanAppendsAndKeepsDst(t *testing.T) {
	s, _ := NewScanner(nil)
	dst := make([]Finding, 1, 8)
	dst[0] = Finding{"prior", 9}
	got := s.Scan("nothing to see here", dst)
	if len(got) != 1 || &got[0] != &dst[0] {
		t.Fatalf("no findings must return dst unchanged, got %v", got)
	}
	got = s.Scan("x@example.com", dst)
	if !slices.Equal(got, []Finding{{"prior", 9}, {Email, 1}}) {
		t.Fatalf("Scan appended %v", got)
	}
}

func TestScanNoAllocs(t *testing.T) {
	s, _ := NewScanner(nil)
	text := benchText(2048, true)
	dst := make([]Finding, 0, int(numTypes))
	allocs := testing.AllocsPerRun(20, func() {
		dst = s.Scan(text, dst[:0])
	})
	if allocs != 0 {
		t.Fatalf("Scan allocated %.1f times per run with capacity in dst", allocs)
	}
	if len(dst) == 0 {
		t.Fatal("benchmark text with PII produced no findings")
	}
}

// TestFindingCarriesNoText guards the contract that matched text never leaves
// the package: Finding has exactly the fields Type and Count.
func TestFindingCarriesNoText(t *testing.T) {
	s, _ := NewScanner(nil)
	secret := "sk-proj-" + newGen(3).str(b64url, 64)
	for _, f := range s.Scan("key "+secret, nil) {
		if f.Type != APIKey || f.Count != 1 {
			t.Fatalf("unexpected finding %+v", f)
		}
	}
}

func TestScanInvalidUTF8(t *testing.T) {
	s, _ := NewScanner(nil)
	text := "\xff\xfe jane@example.com \xc3\x28 415-555-0134 \xe2\x82 \xf0\x28\x8c\xbc"
	got := s.Scan(text, nil)
	if !slices.Equal(got, []Finding{{Email, 1}, {Phone, 1}}) {
		t.Fatalf("Scan = %v", got)
	}
}

// TestScanPathologicalLinear feeds inputs built to defeat naive scanners
// (many anchors, no closing markers). The assertion is on the result; a
// quadratic scanner would show up as a hang here and in the benchmarks.
func TestScanPathological(t *testing.T) {
	s, _ := NewScanner(nil)
	inputs := map[string]string{
		"begin without end": strings.Repeat("-----BEGIN RSA PRIVATE KEY-----\n"+strings.Repeat("A", 30)+"\n", 2000),
		"at signs":          strings.Repeat("a@", 50000),
		"colons":            strings.Repeat("a:", 50000),
		"digits and dots":   strings.Repeat("1.", 50000),
		"digits and spaces": strings.Repeat("4 ", 50000),
		"secret names":      strings.Repeat("password=", 20000),
		"jwt prefixes":      strings.Repeat("eyJ.", 30000),
		"url schemes":       strings.Repeat("a://", 30000),
		"key prefixes":      strings.Repeat("sk-", 40000),
		"jwt dashes":        strings.Repeat("eyJ-", 30000),
		"colon values":      strings.Repeat("a:", 60000),
		"long label":        "x@" + strings.Repeat("a", 100000),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			got := s.Scan(in, nil)
			if name == "begin without end" {
				if len(got) != 1 || got[0] != (Finding{PrivateKey, 2000}) {
					t.Fatalf("Scan = %v", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("Scan = %v, want nothing", got)
			}
		})
	}
}

func TestScanConcurrent(t *testing.T) {
	s, _ := NewScanner(nil)
	done := make(chan []Finding)
	for range 8 {
		go func() { done <- s.Scan(mixed, nil) }()
	}
	want := s.Scan(mixed, nil)
	for range 8 {
		if got := <-done; !slices.Equal(got, want) {
			t.Fatalf("concurrent Scan = %v, want %v", got, want)
		}
	}
}
