package policy

import (
	"maps"
	"strings"
	"testing"
)

func TestRedactHeaders(t *testing.T) {
	h := map[string]string{
		"Authorization": "Bearer x", "proxy-authorization": "x", "Cookie": "c", "set-cookie": "c",
		"X-API-Key": "k", "api-key": "k", "x-goog-api-key": "k", "x-auth-token": "t", "x-my-secret": "s",
		"x-internal": "i", "content-type": "application/json", "x-tenant-id": "acme", "user-agent": "sdk",
	}
	RedactHeaders(h, []string{"X-Internal"})
	want := map[string]string{"content-type": "application/json", "x-tenant-id": "acme", "user-agent": "sdk"}
	if !maps.Equal(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
}

func TestHeaderMap(t *testing.T) {
	pairs := [][2]string{
		{":path", "/v1/chat/completions"}, {"Content-Type", "application/json"}, {"authorization", "Bearer x"},
		{"X-Forwarded-For", "10.0.0.1"}, {"x-forwarded-for", "10.0.0.2"}, {"x-extra-secret-header", "s"},
		{"x-corp-sso", "s"}, {"", "empty"},
	}
	got := HeaderMap(func(yield func(string, string) bool) {
		for _, p := range pairs {
			if !yield(p[0], p[1]) {
				return
			}
		}
	}, []string{"x-corp-sso"})
	want := map[string]string{"content-type": "application/json", "x-forwarded-for": "10.0.0.1,10.0.0.2"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// FuzzHeaderMap: whatever the client sends, no secret header and no
// upper-case or pseudo header comes out, and nothing panics.
func FuzzHeaderMap(f *testing.F) {
	f.Add("Authorization", "Bearer abc", "x-api-key")
	f.Add("X-Goog-Api-Key", "k", "")
	f.Add(":authority", "host", "cookie")
	f.Add("content-type", "application/json", "X-Custom")
	f.Add("\x00\xff", "\r\n", "\u00e9")
	f.Fuzz(func(t *testing.T, name, value, extra string) {
		got := HeaderMap(func(yield func(string, string) bool) {
			_ = yield(name, value) && yield(strings.ToUpper(name), value)
		}, []string{extra})
		for k := range got {
			if IsSecretHeader(k, []string{extra}) || !validHeaderName(k) || hasUpper(k) {
				t.Fatalf("header %q leaked (input %q, extra %q)", k, name, extra)
			}
		}
		m := map[string]string{name: value}
		RedactHeaders(m, []string{extra})
		if _, ok := m[name]; ok && IsSecretHeader(name, []string{extra}) {
			t.Fatalf("RedactHeaders kept %q", name)
		}
	})
}
