package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// measurement is one run of the load against one server.
type measurement struct {
	label    string
	run      runConfig
	settings Settings
	corpus   *corpus
	admin    string // admin address to scrape; "" to skip server metrics
	profile  string // file for a CPU profile of the measured phase; "" for none
	progress func(format string, args ...any)
}

// execute warms up, measures and reads the server's metrics around the
// measured phase.
func (m *measurement) execute(ctx context.Context) (*Report, error) {
	var (
		sv       *ServerStats
		cpuStart serverMetrics
		smp      *sampler
		profErr  error
		profWG   sync.WaitGroup
	)
	if m.admin != "" {
		sv = &ServerStats{}
		before, err := scrape(ctx, m.admin)
		if err != nil {
			sv.Error = err.Error()
		}
		sv.Before = before
	}
	m.settings.LoadAvgBefore = loadAvg()
	lr, err := newLoadRun(ctx, m.run, m.corpus)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	res := lr.measure(ctx, func(d time.Duration) {
		m.progressf("%s: warm-up done, measuring", m.label)
		if sv == nil || sv.Error != "" {
			return
		}
		cpuStart, _ = scrape(ctx, m.admin)
		smp = startSampler(ctx, m.admin, time.Second)
		if m.profile != "" && d > 0 {
			secs := max(1, int(d/time.Second)-1)
			profWG.Go(func() { profErr = fetchProfile(ctx, m.admin, secs, m.profile) })
		}
	})
	var cpuEnd serverMetrics
	if smp != nil {
		cpuEnd, _ = scrape(ctx, m.admin)
	}
	lr.close()
	rep := newReport(m.label, m.run, m.settings, res)
	rep.Started = started
	if sv != nil && sv.Error == "" {
		if smp != nil {
			sv.During = smp.finish()
		}
		if res.rec.done > 0 && cpuEnd.CPUSeconds > 0 {
			sv.CPUPerRequestUS = (cpuEnd.CPUSeconds - cpuStart.CPUSeconds) / float64(res.rec.done) * 1e6
		}
		if lookups := (cpuEnd.CacheHits - cpuStart.CacheHits) + (cpuEnd.CacheMiss - cpuStart.CacheMiss); lookups > 0 {
			rate := (cpuEnd.CacheHits - cpuStart.CacheHits) / lookups
			sv.CacheHitRate = &rate
		}
		sv.After = settle(ctx, m.admin, sv.Before.Goroutines)
		profWG.Wait()
		if profErr != nil {
			sv.Error = profErr.Error()
		} else if m.profile != "" {
			sv.Profile = m.profile
		}
	}
	rep.Server = sv
	return rep, nil
}

// settle scrapes the server after the client closed its connections,
// waiting up to two seconds for the goroutine count to fall back to where
// it started: one that stays above it is a leak worth reporting.
func settle(ctx context.Context, admin string, baseline float64) serverMetrics {
	deadline := time.Now().Add(2 * time.Second)
	var m serverMetrics
	for {
		var err error
		m, err = scrape(ctx, admin)
		if err == nil && m.Goroutines <= baseline || time.Now().After(deadline) {
			return m
		}
		select {
		case <-ctx.Done():
			return m
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *measurement) progressf(format string, args ...any) {
	if m.progress != nil {
		m.progress(format, args...)
	}
}

// loadAvg is the first three fields of /proc/loadavg, "" where there is none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// validate checks a run configuration before anything starts.
func (rc runConfig) validate() error {
	switch {
	case rc.conns < 1:
		return fmt.Errorf("-conns must be at least 1")
	case rc.rate <= 0 && rc.concurrency < 1:
		return fmt.Errorf("-c must be at least 1")
	case rc.rate > 0 && rc.maxWorkers < 1:
		return fmt.Errorf("-max-workers must be at least 1")
	case rc.requests <= 0 && rc.duration <= 0:
		return fmt.Errorf("give -n or -d")
	case rc.requests < 0 || rc.duration < 0 || rc.warmup < 0:
		return fmt.Errorf("-n, -d and -warmup cannot be negative")
	case rc.msgTimeout <= 0 || rc.streamTimeout <= 0:
		return fmt.Errorf("-msg-timeout and -stream-timeout must be positive")
	case rc.expect != expectRoute && rc.expect != expectContinue:
		return fmt.Errorf("-expect must be %s or %s", expectRoute, expectContinue)
	}
	return nil
}
