package envoysim

import (
	"strings"
	"sync"
)

// counters holds Envoy-named counters and gauges.
type counters struct {
	mu sync.Mutex
	c  map[string]uint64
	g  map[string]int64
}

func newCounters() *counters { return &counters{c: map[string]uint64{}, g: map[string]int64{}} }

func (s *counters) inc(name string) {
	s.mu.Lock()
	s.c[name]++
	s.mu.Unlock()
}

func (s *counters) setGauge(name string, v int64) {
	s.mu.Lock()
	s.g[name] = v
	s.mu.Unlock()
}

func (s *counters) snapshot() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.c)+len(s.g))
	for k, v := range s.c {
		out[k] = v
	}
	for k, v := range s.g {
		if v < 0 {
			v = 0
		}
		out[k] = uint64(v)
	}
	return out
}

func (s *counters) sum(suffix string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for k, v := range s.c {
		if k == suffix || strings.HasSuffix(k, "."+suffix) {
			n += v
		}
	}
	for k, v := range s.g {
		if (k == suffix || strings.HasSuffix(k, "."+suffix)) && v > 0 {
			n += uint64(v)
		}
	}
	return n
}
