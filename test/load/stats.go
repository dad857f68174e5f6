package main

import (
	"math"
	"slices"
	"time"
)

// samples holds every latency of one phase as nanoseconds. Keeping all of
// them (8 bytes each: 8 MB per phase for a million requests) makes every
// percentile exact, p99.9 included, which a bucketed histogram would only
// approximate; sorting once at the end costs less than the run itself.
type samples []int64

func (s *samples) add(d time.Duration) { *s = append(*s, int64(d)) }

// Summary is the latency distribution of one phase. Durations are in
// microseconds in JSON so the numbers stay readable and comparable.
type Summary struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_us"`
	Min   float64 `json:"min_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// summarize sorts s in place and reads its percentiles.
func summarize(s samples) Summary {
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return Summary{
		Count: len(s),
		Mean:  sum / float64(len(s)) / 1e3,
		Min:   us(s[0]),
		P50:   us(percentile(s, 50)),
		P90:   us(percentile(s, 90)),
		P99:   us(percentile(s, 99)),
		P999:  us(percentile(s, 99.9)),
		Max:   us(s[len(s)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted: the
// smallest sample that at least p% of the samples are less than or equal
// to. It is always a measured value, never an interpolation, so "p99.9 is
// 4.1 ms" means a request really took 4.1 ms. p is clamped to [0, 100].
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	switch {
	case p <= 0 || math.IsNaN(p):
		return sorted[0]
	case p >= 100:
		return sorted[n-1]
	}
	// Multiply before dividing and correct for float error so that, for
	// example, p=99.9 of 1000 samples is rank 999, not 1000.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
