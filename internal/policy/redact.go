package policy

import (
	"iter"
	"strings"
)

// DefaultSecretHeaders never reach policy input, logs or decision output.
// The config's policy.secret_headers adds to them.
var DefaultSecretHeaders = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
}

// secretNameParts catch vendor credential headers nobody listed
// (x-goog-api-key, x-auth-token, x-amz-security-token, ...): a header whose
// lower-cased name contains one of them is treated as secret too. "auth"
// alone is not in the list: x-authenticated-user and the like identify a
// caller and are what a tenant header is often called.
var secretNameParts = []string{"authorization", "api-key", "apikey", "api_key", "token", "secret", "password", "passwd", "credential", "session"}

// IsSecretHeader reports whether a header name (any case) must be dropped:
// a default secret header, one of extra (case-insensitive), or a name that
// looks like a credential.
func IsSecretHeader(name string, extra []string) bool {
	for _, s := range DefaultSecretHeaders {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	for _, s := range extra {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	lower := name
	if hasUpper(name) {
		lower = strings.ToLower(name)
	}
	for _, p := range secretNameParts {
		if strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// RedactHeaders deletes the secret headers (see IsSecretHeader) from h in
// place. Keys may be in any case.
func RedactHeaders(h map[string]string, extra []string) {
	for k := range h {
		if IsSecretHeader(k, extra) {
			delete(h, k)
		}
	}
}

// HeaderMap builds input.request.headers from (name, value) pairs as Envoy
// sends them: names lower-cased; secret headers, pseudo-headers (":path")
// and names that are not HTTP tokens dropped; repeated headers joined with
// "," as HTTP allows. It returns a non-nil map.
func HeaderMap(pairs iter.Seq2[string, string], extra []string) map[string]string {
	out := make(map[string]string, 16)
	for k, v := range pairs {
		if !validHeaderName(k) {
			continue // also drops pseudo-headers: ':' is not a token character
		}
		if hasUpper(k) {
			k = strings.ToLower(k)
		}
		if IsSecretHeader(k, extra) {
			continue
		}
		if old, dup := out[k]; dup {
			out[k] = old + "," + v
			continue
		}
		out[k] = v
	}
	return out
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
