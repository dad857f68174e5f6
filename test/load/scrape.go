package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serverMetrics is what the tool reads from a server's Prometheus /metrics.
type serverMetrics struct {
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	GOMAXPROCS float64 `json:"gomaxprocs,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CacheHits  float64 `json:"classifier_cache_hits,omitempty"`
	CacheMiss  float64 `json:"classifier_cache_misses,omitempty"`
}

// wanted maps exposition series (name plus exact label set) to fields.
var wanted = map[string]func(*serverMetrics, float64){
	"process_resident_memory_bytes":                            func(m *serverMetrics, v float64) { m.RSSBytes = v },
	"go_goroutines":                                            func(m *serverMetrics, v float64) { m.Goroutines = v },
	"go_sched_gomaxprocs_threads":                              func(m *serverMetrics, v float64) { m.GOMAXPROCS = v },
	"process_cpu_seconds_total":                                func(m *serverMetrics, v float64) { m.CPUSeconds = v },
	`switchyard_classifier_cache_lookups_total{result="hit"}`:  func(m *serverMetrics, v float64) { m.CacheHits = v },
	`switchyard_classifier_cache_lookups_total{result="miss"}`: func(m *serverMetrics, v float64) { m.CacheMiss = v },
}

// parseMetrics reads the series the tool needs from Prometheus text
// exposition. Unknown lines are skipped; a line it cannot read is an error
// only when it is one of the wanted series.
func parseMetrics(r io.Reader) (serverMetrics, error) {
	var m serverMetrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// "name{labels} value [timestamp]"; label values may hold spaces,
		// so the series ends at the closing brace when there is one.
		end := strings.IndexByte(line, ' ')
		if i := strings.IndexByte(line, '{'); i >= 0 && (end < 0 || i < end) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			end = j + 1
		}
		if end <= 0 || end >= len(line) {
			continue
		}
		set, ok := wanted[line[:end]]
		if !ok {
			continue
		}
		fields := strings.Fields(line[end:])
		if len(fields) == 0 {
			return m, fmt.Errorf("metrics: series %s has no value", line[:end])
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return m, fmt.Errorf("metrics: series %s: %w", line[:end], err)
		}
		set(&m, v)
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// scrape fetches and parses http://admin/metrics.
func scrape(ctx context.Context, admin string) (serverMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return serverMetrics{}, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return serverMetrics{}, fmt.Errorf("scrape %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverMetrics{}, fmt.Errorf("scrape %s: HTTP %d", admin, resp.StatusCode)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// sampler scrapes the server every interval while the measured phase runs,
// to report peak RSS and whether RSS still grows in the second half.
type sampler struct {
	mu      sync.Mutex
	samples []rssSample
	stop    chan struct{}
	done    chan struct{}
}

type rssSample struct {
	at  time.Duration
	rss float64
	g   float64
}

func startSampler(ctx context.Context, admin string, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t0 := time.Now()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-tk.C:
				m, err := scrape(ctx, admin)
				if err != nil {
					continue
				}
				s.mu.Lock()
				s.samples = append(s.samples, rssSample{time.Since(t0), m.RSSBytes, m.Goroutines})
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// memTrend summarises the samples: peak RSS, RSS at the middle and the end
// of the run, and peak goroutines.
type memTrend struct {
	Samples       int     `json:"samples"`
	RSSMaxBytes   float64 `json:"rss_max_bytes"`
	RSSMidBytes   float64 `json:"rss_mid_bytes"`
	RSSEndBytes   float64 `json:"rss_end_bytes"`
	GoroutinesMax float64 `json:"goroutines_max"`
}

func (s *sampler) finish() memTrend {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var t memTrend
	t.Samples = len(s.samples)
	if t.Samples == 0 {
		return t
	}
	for _, x := range s.samples {
		t.RSSMaxBytes = max(t.RSSMaxBytes, x.rss)
		t.GoroutinesMax = max(t.GoroutinesMax, x.g)
	}
	t.RSSMidBytes = s.samples[(t.Samples-1)/2].rss
	t.RSSEndBytes = s.samples[t.Samples-1].rss
	return t
}

// fetchProfile saves a CPU profile of seconds from the server's pprof
// endpoint (Switchyard serves it with --pprof) into file.
func fetchProfile(ctx context.Context, admin string, seconds int, file string) error {
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	url := "http://" + admin + "/debug/pprof/profile?seconds=" + strconv.Itoa(seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d (is the server running with --pprof?)", admin, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", file, err)
	}
	return f.Close()
}
