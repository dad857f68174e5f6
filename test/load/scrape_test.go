package main

import (
	"strings"
	"testing"
)

const sampleMetrics = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_sched_gomaxprocs_threads 2
process_cpu_seconds_total 12.5
process_resident_memory_bytes 5.6623104e+07
switchyard_classifier_cache_lookups_total{result="hit"} 300
switchyard_classifier_cache_lookups_total{result="miss"} 700
switchyard_requests_total{model="a b",outcome="routed",reason="x y",target="fast",tier="fast"} 9
go_goroutines_other 1
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := serverMetrics{RSSBytes: 56623104, Goroutines: 42, GOMAXPROCS: 2, CPUSeconds: 12.5, CacheHits: 300, CacheMiss: 700}
	if m != want {
		t.Errorf("parseMetrics = %+v, want %+v", m, want)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	tests := []struct {
		name, in string
		err      bool
	}{
		{"bad value of a wanted series", "go_goroutines abc\n", true},
		{"bad value of another series", "other_metric abc\n", false},
		{"missing value", "go_goroutines \n", true},
		{"unclosed labels", `switchyard_classifier_cache_lookups_total{result="hit" 3` + "\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseMetrics(strings.NewReader(tt.in)); (err != nil) != tt.err {
				t.Errorf("error %v, want error %v", err, tt.err)
			}
		})
	}
}

// FuzzParseMetrics: whatever a server sends, parsing never panics.
func FuzzParseMetrics(f *testing.F) {
	f.Add(sampleMetrics)
	f.Add("go_goroutines")
	f.Add("{} 1\n}{ 2\n")
	f.Add(`switchyard_classifier_cache_lookups_total{result="hit"}`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseMetrics(strings.NewReader(s))
	})
}
