package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	seq := func(n int) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(i + 1)
		}
		return s
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"single p0", []int64{7}, 0, 7},
		{"single p99.9", []int64{7}, 99.9, 7},
		{"1000 p50", seq(1000), 50, 500},
		{"1000 p90", seq(1000), 90, 900},
		{"1000 p99", seq(1000), 99, 990},
		{"1000 p99.9 is rank 999 not the max", seq(1000), 99.9, 999},
		{"1000 p100", seq(1000), 100, 1000},
		{"1000 p0 is the min", seq(1000), 0, 1},
		{"2000 p99.9", seq(2000), 99.9, 1998},
		{"10 p99.9 is the max", seq(10), 99.9, 10},
		{"10 p50", seq(10), 50, 5},
		{"3 p50 rounds up", seq(3), 50, 2},
		{"over 100 clamps", seq(10), 120, 10},
		{"negative clamps", seq(10), -5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(n=%d, %v) = %d, want %d", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsAndConverts(t *testing.T) {
	var s samples
	rng := rand.New(rand.NewPCG(1, 2))
	// 1..10000 µs in random order.
	for _, i := range rng.Perm(10000) {
		s.add(time.Duration(i+1) * time.Microsecond)
	}
	got := summarize(s)
	want := Summary{Count: 10000, Mean: 5000.5, Min: 1, P50: 5000, P90: 9000, P99: 9900, P999: 9990, Max: 10000}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("summarize(nil) must be zero")
	}
}
