package config

import (
	"context"
	"sync"
	"testing"
	"time"
)

// scripted is a fingerprint function that returns its script in order and
// then the last value forever, counting calls.
type scripted struct {
	mu     sync.Mutex
	script []string
	calls  int
}

func (s *scripted) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	v := s.script[0]
	if len(s.script) > 1 {
		s.script = s.script[1:]
	}
	return v
}

func (s *scripted) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// runWatch runs watch over script until the fingerprint has been read
// reads times, and returns the fingerprints onChange saw.
func runWatch(t *testing.T, script []string, reads int) []string {
	t.Helper()
	s := &scripted{script: script}
	var mu sync.Mutex
	var seen []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watch(ctx, time.Millisecond, time.Millisecond, s.next, func() {
			mu.Lock()
			defer mu.Unlock()
			s.mu.Lock()
			seen = append(seen, s.script[0])
			s.mu.Unlock()
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.n() < reads {
		if time.Now().After(deadline) {
			t.Fatalf("fingerprint read %d times in 10 s, want %d", s.n(), reads)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return seen
}

func TestWatchWaitsForAFileToSettle(t *testing.T) {
	tests := []struct {
		name   string
		script []string
		want   []string
	}{
		// Truncated, then written: one reload, of the complete file.
		{"written in place", []string{"old", "empty", "half", "new"}, []string{"new"}},
		{"one change", []string{"old", "new"}, []string{"new"}},
		// Changed and changed back before it settled: nothing to reload.
		{"changed back", []string{"old", "tmp", "old"}, nil},
		{"no change", []string{"old"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runWatch(t, tt.script, len(tt.script)+20)
			if len(got) != len(tt.want) {
				t.Fatalf("onChange saw %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("onChange saw %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// A file that never stops changing is reloaded anyway, after
// maxSettleRounds reads.
func TestWatchGivesUpWaiting(t *testing.T) {
	script := []string{"v0"}
	for i := range 3 * maxSettleRounds {
		script = append(script, "v"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	got := runWatch(t, script, len(script)+5)
	if len(got) < 2 {
		t.Fatalf("onChange called %d times for a file changing on every read, want at least 2", len(got))
	}
}

func TestWatchRejectsBadInterval(t *testing.T) {
	if err := Watch(context.Background(), 0, nil, func() []string { return nil }, func() {}); err == nil {
		t.Fatal("interval 0 accepted")
	}
}
