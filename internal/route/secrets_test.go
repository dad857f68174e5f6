package route

import (
	"fmt"
	"sync"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/policy"
)

// The memo must answer exactly as policy.IsSecretHeader, first time and
// remembered, under concurrency, and stay bounded.
func TestSecretNamesMatchesPolicy(t *testing.T) {
	extra := []string{"x-internal-key", "X-Team-Pass"}
	s := newSecretNames(extra)
	names := []string{"authorization", "Authorization", "x-api-key", "cookie", "content-type", "x-tenant-id",
		"x-internal-key", "x-team-pass", "x-session-id", "x-my-token-thing", "accept", "user-agent", "", ":path"}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for round := 0; round < 3; round++ {
				for _, n := range names {
					if got, want := s.secret(n), policy.IsSecretHeader(n, extra); got != want {
						t.Errorf("secret(%q) = %v, want %v", n, got, want)
					}
				}
			}
		})
	}
	wg.Wait()
	if got := len(*s.known.Load()); got != len(names) {
		t.Errorf("%d names remembered, want %d", got, len(names))
	}
	for i := 0; i < 2*maxSecretNames; i++ {
		n := fmt.Sprintf("x-made-up-%d", i)
		if s.secret(n) {
			t.Fatalf("%s reported secret", n)
		}
	}
	if s.secret("x-made-up-token-9") != true {
		t.Error("a credential-looking name past the bound is not reported secret")
	}
	if got := len(*s.known.Load()); got != maxSecretNames {
		t.Errorf("memo holds %d names, want the bound %d", got, maxSecretNames)
	}
}
