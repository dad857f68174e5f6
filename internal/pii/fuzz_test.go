package pii

import (
	"slices"
	"testing"
)

var fuzzSeeds = []string{
	"",
	"jane.doe@example.com a@b foo@1.2 git@github.com:x/y",
	"4111 1111 1111 1111 4111111111111112 3782 822463 10005",
	"GB82 WEST 1234 5698 7654 32 DE89370400440532013000 GB83WEST12345698765432",
	"SSN 123-45-6789 ssn: 123456789 000-12-3456",
	"(415) 555-0134 +44 20 7946 0958 +1 415 555 0134 2024-01-15 12:30:45",
	"192.0.2.1:8080 version 1.2.3.4 2001:db8::1 ::ffff:192.0.2.1 std::vector",
	"sk-proj-4fK9xQ2mZ7pL1vR8tW3yB6nH0cJ5dS2aE9gU AKIA2345672345672345 ghp_",
	"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7fK9xQ2mZ7pL1vR8tW3y\n-----END RSA PRIVATE KEY-----",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
	`password = "Tr0ub4dor&3xQ" postgres://app:S3cr3tP4ssw9@db:5432/x Authorization: Bearer `,
	"\xff\xfe\xfd@\xc3(-----BEGIN \xe2\x82(415) 555-\x00",
	"+", "(", "-----BEGIN ", "::", "a@", "eyJ", "password=", "x://", "1.", "+1 (",
}

// FuzzScan checks that Scan never panics, that its findings are well-formed
// (known types, positive counts, sorted, unique), that it is idempotent, that
// a single-type scanner agrees with the all-types scanner, and that dst's
// existing content is kept.
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, p := range cleanParagraphs {
		f.Add(p)
	}
	for _, p := range piiParagraphs {
		f.Add(p)
	}
	all, err := NewScanner(nil)
	if err != nil {
		f.Fatal(err)
	}
	single := map[string]*Scanner{}
	for _, ty := range Types() {
		s, err := NewScanner([]string{ty})
		if err != nil {
			f.Fatal(err)
		}
		single[ty] = s
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := all.Scan(text, nil)
		known := Types()
		for i, fd := range got {
			if !slices.Contains(known, fd.Type) {
				t.Fatalf("unknown type %q", fd.Type)
			}
			if fd.Count <= 0 || fd.Count > len(text) {
				t.Fatalf("count %d for %q out of range (len %d)", fd.Count, fd.Type, len(text))
			}
			if i > 0 && got[i-1].Type >= fd.Type {
				t.Fatalf("findings not sorted/unique: %v", got)
			}
		}
		if again := all.Scan(text, nil); !slices.Equal(again, got) {
			t.Fatalf("not idempotent: %v then %v", got, again)
		}
		for _, fd := range got {
			one := single[fd.Type].Scan(text, nil)
			if len(one) != 1 || one[0] != fd {
				t.Fatalf("single-type scan %v disagrees with %v", one, fd)
			}
		}
		prior := []Finding{{"prior", 1}}
		out := all.Scan(text, prior)
		if out[0] != prior[0] || !slices.Equal(out[1:], got) {
			t.Fatalf("append changed dst or findings: %v", out)
		}
	})
}
