// Package pii detects personal data and credentials in prompt text.
//
// It sits on every request's hot path, so it is a hand-written, allocation-free,
// (almost) single-pass scanner rather than a bank of regular expressions: the
// scanner walks the bytes once, stops at cheap anchors (a word start, a digit
// run, '@', "-----BEGIN", "://", a '=' or ':' after a secret-looking name) and
// runs a validator on each candidate (Luhn and IIN prefixes for cards, ISO 13616
// length table and mod-97 for IBANs, SSA rules for SSNs, NANP rules for phones,
// net/netip for IPv6, a JSON header check for JWTs, Shannon entropy for
// assigned secrets). A skip loop in front of the anchors (skip.go) reads eight
// bytes at a time through a class table and passes over ordinary words, short
// numbers and non-secret "key: value" pairs without dispatching.
//
// The matched text never leaves this package: a Finding carries only the type
// name and how many times it occurred. Nothing here logs.
package pii

import (
	"errors"
	"fmt"
	"strings"
)

// Type names are part of the policy contract (Rego sees them as
// input.signals.pii[_].type); keep them stable.
const (
	Email      = "email"
	Phone      = "phone"
	CreditCard = "credit_card"
	IBAN       = "iban"
	SSN        = "ssn"
	IPv4       = "ipv4"
	IPv6       = "ipv6"

	// Credentials and secrets.

	// APIKey is a vendor key or token with a recognisable shape (sk-..., ghp_..., AKIA..., ...).
	APIKey = "api_key"
	// PrivateKey is a PEM or PGP "-----BEGIN ... PRIVATE KEY-----" block with a body.
	PrivateKey = "private_key"
	// JWT is a compact JWS whose header decodes to a JSON object with "alg".
	JWT = "jwt"
	// Secret is a high-entropy value assigned to a secret-looking name, or a
	// password inside a URL's userinfo (connection strings).
	Secret = "secret"
)

// ErrUnknownType is wrapped by NewScanner when a type name is not known.
var ErrUnknownType = errors.New("pii: unknown type")

// Finding is one detected type and how many times it occurred in the text.
// It deliberately has no field for the matched text.
type Finding struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// typeID indexes the count array. The order is the sorted order of the names,
// so emitting findings in index order yields them sorted by Type.
type typeID uint8

const (
	tAPIKey typeID = iota
	tCreditCard
	tEmail
	tIBAN
	tIPv4
	tIPv6
	tJWT
	tPhone
	tPrivateKey
	tSecret
	tSSN
	numTypes
)

var typeNames = [numTypes]string{
	tAPIKey:     APIKey,
	tCreditCard: CreditCard,
	tEmail:      Email,
	tIBAN:       IBAN,
	tIPv4:       IPv4,
	tIPv6:       IPv6,
	tJWT:        JWT,
	tPhone:      Phone,
	tPrivateKey: PrivateKey,
	tSecret:     Secret,
	tSSN:        SSN,
}

// Types returns all known type names, sorted. The slice is a fresh copy.
func Types() []string {
	out := make([]string, numTypes)
	copy(out, typeNames[:])
	return out
}

// IsCredential reports whether t names a credential or secret type (as opposed
// to personal data): api_key, private_key, jwt and secret.
func IsCredential(t string) bool {
	switch t {
	case APIKey, PrivateKey, JWT, Secret:
		return true
	}
	return false
}

func lookupType(name string) (typeID, bool) {
	for i, n := range typeNames {
		if n == name {
			return typeID(i), true
		}
	}
	return 0, false
}

// Scanner finds the configured types in text. It is immutable and safe for
// concurrent use.
type Scanner struct {
	enabled uint16 // bit i set: typeID i is reported
}

// NewScanner returns a scanner reporting the given types; nil or empty means
// all types. An unknown name is an error that names it and lists the valid ones.
func NewScanner(types []string) (*Scanner, error) {
	if len(types) == 0 {
		return &Scanner{enabled: 1<<numTypes - 1}, nil
	}
	var mask uint16
	for _, name := range types {
		id, ok := lookupType(name)
		if !ok {
			return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownType, name, strings.Join(typeNames[:], ", "))
		}
		mask |= 1 << id
	}
	return &Scanner{enabled: mask}, nil
}

// Scan appends one Finding per detected (and enabled) type to dst, sorted by
// Type, and returns the extended slice. With no findings dst is returned
// unchanged. Scan does not allocate when dst has room for the findings.
//
// Every detector runs regardless of which types are enabled, so enabling or
// disabling one type never changes the counts of another.
func (s *Scanner) Scan(text string, dst []Finding) []Finding {
	c := CountAll(text)
	return s.Findings(&c, dst)
}

// Counts holds how often each type occurred in some text, every type
// counted whether enabled or not. Counts of separate texts add up
// (Counts.Add): the signal engine scans each message of a request on its
// own and caches the counts per message.
type Counts [numTypes]int32

// Add adds the counts of o to c.
func (c *Counts) Add(o *Counts) {
	for i := range c {
		c[i] += o[i]
	}
}

// CountAll runs every detector over text and returns the counts. It does
// not allocate.
func CountAll(text string) Counts {
	var st state
	st.pemEnd = pemUnknown
	st.scan(text)
	return st.counts
}

// Findings appends one Finding per enabled type with a non-zero count in c
// to dst, sorted by Type, and returns the extended slice.
func (s *Scanner) Findings(c *Counts, dst []Finding) []Finding {
	for id := range numTypes {
		if s.enabled&(1<<id) != 0 && c[id] > 0 {
			dst = append(dst, Finding{Type: typeNames[id], Count: int(c[id])})
		}
	}
	return dst
}
