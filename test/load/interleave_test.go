package main

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// arrivals records which server saw each new stream, in order.
type arrivals struct {
	mu  sync.Mutex
	seq []int
}

func (a *arrivals) add(k int) {
	a.mu.Lock()
	a.seq = append(a.seq, k)
	a.mu.Unlock()
}

// runs counts maximal runs of the same server in the arrival order.
func (a *arrivals) runs() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i, k := range a.seq {
		if i == 0 || a.seq[i-1] != k {
			n++
		}
	}
	return n
}

// Interleaving loads the two servers in turn, slice by slice, each for its
// run's duration, and reports each server's own requests only.
func TestInterleavedCompare(t *testing.T) {
	var seen arrivals
	routed := func(k int) *scripted {
		return &scripted{body: func([]byte) *extprocv3.ProcessingResponse {
			return routeTo("fast", true, false)
		}, onStream: func() { seen.add(k) }}
	}
	srvs := [2]*scripted{routed(0), routed(1)}
	var runs [2]*measurement
	for k := range runs {
		addr := startScripted(t, srvs[k])
		m := testMeasurement(t, addr, "", runConfig{concurrency: 2, duration: 300 * time.Millisecond, expect: expectRoute})
		m.label = []string{"a", "b"}[k]
		runs[k] = &m
	}
	started := 0
	start := func(context.Context, *measurement) (func(), error) {
		started++
		return func() {}, nil
	}
	const slice = 50 * time.Millisecond
	t0 := time.Now()
	reps, err := interleaved(context.Background(), runs, slice, start)
	if err != nil {
		t.Fatal(err)
	}
	window := time.Since(t0).Seconds()
	if started != 2 {
		t.Errorf("started %d servers, want 2", started)
	}
	for k, rep := range reps {
		if rep.Completed == 0 || rep.OK != rep.Completed || len(rep.Errors) != 0 {
			t.Errorf("%s: completed %d, ok %d, errors %v", rep.Label, rep.Completed, rep.OK, rep.Errors)
		}
		if got := srvs[k].streams.Load(); got != rep.Completed {
			t.Errorf("%s: server saw %d streams, report counts %d: load went to the wrong server", rep.Label, got, rep.Completed)
		}
		// The measured time is the sum of this server's slices: at least
		// its duration, and well short of the whole window, which holds
		// the other server's slices too.
		if rep.ElapsedSec < 0.3 || rep.ElapsedSec > 0.75*window {
			t.Errorf("%s: measured %.3f s of a %.3f s window, want its own slices (>= 0.3 s, about half)", rep.Label, rep.ElapsedSec, window)
		}
	}
	// Six slices each in ABBA order: a, bb, aa, bb, aa, bb, a = 7 runs.
	// One after the other would be 2.
	if n := seen.runs(); n < 6 {
		t.Errorf("streams arrived in %d runs of one server, want at least 6 (slices alternating)", n)
	}
}

func TestABBA(t *testing.T) {
	want := [][2]int{{0, 1}, {1, 0}, {0, 1}, {1, 0}}
	for i, w := range want {
		if got := abba(i); got != w {
			t.Errorf("abba(%d) = %v, want %v", i, got, w)
		}
	}
}

func TestInterleaveFlag(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"-compare", "-interleave", "1s", "-d", "10s"}, false},
		{[]string{"-compare", "-interleave", "1s"}, false}, // -d defaults to 10s
		{[]string{"-interleave", "1s", "-d", "10s"}, true}, // not a comparison
		{[]string{"-compare", "-interleave", "1s", "-n", "1000"}, true},
		{[]string{"-compare", "-interleave", "-1s"}, true},
		{[]string{"-compare", "-d", "10s"}, false},
	}
	for _, tt := range tests {
		o, err := parse(tt.args, io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("parse(%q): err %v, want error %v", tt.args, err, tt.wantErr)
		}
		if err == nil && o.cmp.interleave > 0 && o.cmp.interleave != time.Second {
			t.Errorf("parse(%q): interleave %v", tt.args, o.cmp.interleave)
		}
	}
}
