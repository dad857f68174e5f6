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
	admin    string   // admin address to scrape; "" to skip server metrics
	profile  string   // file for a CPU profile of the measured phase; "" for none
	argv     []string // -compare: the command that starts the server
	progress func(format string, args ...any)
}

// execute warms up, measures and reads the server's metrics around the
// measured phase.
func (m *measurement) execute(ctx context.Context) (*Report, error) {
	s, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	s.start(ctx, m.run.duration)
	s.measure(ctx, m.run)
	return s.finish(ctx), nil
}

// session is one measurement in progress: its load run, the server's
// metrics before it, and what its measured slices produced so far. A plain
// run measures one slice; -compare -interleave measures many short slices
// of two sessions in turn.
type session struct {
	m        *measurement
	lr       *loadRun
	sv       *ServerStats
	started  time.Time
	cpuStart serverMetrics
	smp      *sampler
	res      phaseResult
	profErr  error
	profWG   sync.WaitGroup
}

// open scrapes the server, connects and runs the warm-up (discarded).
func (m *measurement) open(ctx context.Context) (*session, error) {
	s := &session{m: m, res: phaseResult{rec: newRecorder()}}
	if m.admin != "" {
		s.sv = &ServerStats{}
		before, err := scrape(ctx, m.admin)
		if err != nil {
			s.sv.Error = err.Error()
		}
		s.sv.Before = before
	}
	m.settings.LoadAvgBefore = loadAvg()
	lr, err := newLoadRun(ctx, m.run, m.corpus)
	if err != nil {
		return nil, err
	}
	s.lr, s.started = lr, time.Now()
	if m.run.warmup > 0 {
		w := m.run
		w.requests, w.duration = 0, m.run.warmup
		lr.phase(ctx, w)
	}
	return s, nil
}

// start begins the measured part: the server's CPU baseline, the memory
// sampler, and a CPU profile over the next d.
func (s *session) start(ctx context.Context, d time.Duration) {
	s.m.progressf("%s: warm-up done, measuring", s.m.label)
	if s.sv == nil || s.sv.Error != "" {
		return
	}
	s.cpuStart, _ = scrape(ctx, s.m.admin)
	s.smp = startSampler(ctx, s.m.admin, time.Second)
	if s.m.profile != "" && d > 0 {
		secs := max(1, int(d/time.Second)-1)
		s.profWG.Go(func() { s.profErr = fetchProfile(ctx, s.m.admin, secs, s.m.profile) })
	}
}

// measure runs one measured slice with cfg and adds its results.
func (s *session) measure(ctx context.Context, cfg runConfig) {
	r := s.lr.phase(ctx, cfg)
	s.res.rec.merge(r.rec)
	s.res.elapsed += r.elapsed
	s.res.sent += r.sent
	s.res.maxWorkers = max(s.res.maxWorkers, r.maxWorkers)
}

// finish closes the load run and reports the measured slices.
func (s *session) finish(ctx context.Context) *Report {
	m := s.m
	var cpuEnd serverMetrics
	if s.smp != nil {
		cpuEnd, _ = scrape(ctx, m.admin)
	}
	s.lr.close()
	res := s.res
	rep := newReport(m.label, m.run, m.settings, res)
	rep.Started = s.started
	if sv := s.sv; sv != nil && sv.Error == "" {
		if s.smp != nil {
			sv.During = s.smp.finish()
		}
		if res.rec.done > 0 && cpuEnd.CPUSeconds > 0 {
			sv.CPUPerRequestUS = (cpuEnd.CPUSeconds - s.cpuStart.CPUSeconds) / float64(res.rec.done) * 1e6
		}
		if lookups := (cpuEnd.CacheHits - s.cpuStart.CacheHits) + (cpuEnd.CacheMiss - s.cpuStart.CacheMiss); lookups > 0 {
			rate := (cpuEnd.CacheHits - s.cpuStart.CacheHits) / lookups
			sv.CacheHitRate = &rate
		}
		sv.After = settle(ctx, m.admin, sv.Before.Goroutines)
		s.profWG.Wait()
		if s.profErr != nil {
			sv.Error = s.profErr.Error()
		} else if m.profile != "" {
			sv.Profile = m.profile
		}
	}
	rep.Server = s.sv
	return rep
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
