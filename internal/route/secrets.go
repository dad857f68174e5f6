package route

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/switchyard-llm/switchyard/internal/policy"
)

// secretNames remembers which header names policy.IsSecretHeader drops.
// Clients send the same few dozen names on every request, and the full
// check (default and configured names, then every credential-looking
// substring) was ~1% of server CPU under load for ~20 headers a request.
// Lookups read an immutable map through an atomic pointer; a new name
// copies the map under a lock. The set is bounded: past maxSecretNames
// names are checked every time, so a client inventing names cannot grow it.
type secretNames struct {
	extra []string
	known atomic.Pointer[map[string]bool]
	mu    sync.Mutex
}

const maxSecretNames = 512

func newSecretNames(extra []string) *secretNames {
	s := &secretNames{extra: extra}
	m := map[string]bool{}
	s.known.Store(&m)
	return s
}

// secret reports policy.IsSecretHeader(name, extra).
func (s *secretNames) secret(name string) bool {
	if v, ok := (*s.known.Load())[name]; ok {
		return v
	}
	v := policy.IsSecretHeader(name, s.extra)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.known.Load()
	if _, ok := old[name]; ok || len(old) >= maxSecretNames {
		return v
	}
	m := make(map[string]bool, len(old)+1)
	for k, b := range old {
		m[k] = b
	}
	// name may view a request's buffer (extproc decodes without copying);
	// a copy keeps that buffer from living as long as the router.
	m[strings.Clone(name)] = v
	s.known.Store(&m)
	return v
}
