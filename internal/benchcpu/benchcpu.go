// Package benchcpu measures the CPU time of the calling OS thread, for
// benchmarks on a machine shared with other work: wall time also counts the
// time the benchmark waited for a core, thread CPU time does not. It is
// imported by tests only.
package benchcpu

import (
	"runtime"
	"testing"
	"time"
)

// Meter measures one benchmark loop on one OS thread.
type Meter struct {
	start time.Duration
	ok    bool
}

// Start locks the calling goroutine to its OS thread until Report and
// reads the thread's CPU time.
func Start() Meter {
	runtime.LockOSThread()
	t, ok := Thread()
	return Meter{start: t, ok: ok}
}

// Report unlocks the thread and adds the CPU time per operation over n
// operations as the cpu-ns/op metric. It returns that value, and false
// where thread CPU time is not available (nothing is reported then).
func (m Meter) Report(b *testing.B, n int) (float64, bool) {
	t, ok := Thread()
	runtime.UnlockOSThread()
	if !m.ok || !ok || n <= 0 {
		return 0, false
	}
	ns := float64(t-m.start) / float64(n)
	b.ReportMetric(ns, "cpu-ns/op")
	return ns, true
}
