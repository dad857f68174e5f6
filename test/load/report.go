package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one measured run against one server.
type Report struct {
	Label      string             `json:"label"`
	Addr       string             `json:"addr"`
	Started    time.Time          `json:"started"`
	Settings   Settings           `json:"settings"`
	Sent       int                `json:"sent"`
	Completed  int64              `json:"completed"`
	OK         int64              `json:"ok"`
	Errors     map[string]int64   `json:"errors"`
	Immediate  map[int]int64      `json:"immediate_responses"`
	Targets    map[string]int64   `json:"targets,omitempty"`
	ElapsedSec float64            `json:"elapsed_seconds"`
	Throughput float64            `json:"throughput_rps"` // completed requests per second, failed ones included
	Goodput    float64            `json:"goodput_rps"`    // correctly answered requests per second
	Latency    map[string]Summary `json:"latency"`
	Workers    int                `json:"client_workers"`
	Server     *ServerStats       `json:"server,omitempty"`
}

// Settings echoes what produced a report.
type Settings struct {
	Mode          string  `json:"mode"` // closed | open
	Concurrency   int     `json:"concurrency,omitempty"`
	Rate          float64 `json:"rate_rps,omitempty"`
	Conns         int     `json:"conns"`
	Requests      int     `json:"requests,omitempty"`
	DurationSec   float64 `json:"duration_seconds,omitempty"`
	WarmupSec     float64 `json:"warmup_seconds"`
	Sizes         string  `json:"sizes"`
	Pool          int     `json:"pool"`
	Unique        float64 `json:"unique"`
	Seed          uint64  `json:"seed"`
	Expect        string  `json:"expect"`
	MsgTimeoutMS  float64 `json:"msg_timeout_ms"`
	ClientProcs   int     `json:"client_gomaxprocs"`
	NumCPU        int     `json:"num_cpu"`
	LoadAvgBefore string  `json:"loadavg_before,omitempty"`
	// InterleaveSec is set when the run was measured in slices alternating
	// with another server's (-compare -interleave).
	InterleaveSec float64 `json:"interleave_seconds,omitempty"`
}

// ServerStats is what the server's /metrics said around the run.
type ServerStats struct {
	Before serverMetrics `json:"before"`
	After  serverMetrics `json:"after"`
	During memTrend      `json:"during"`
	// CPUPerRequestUS is server CPU time (process_cpu_seconds_total delta)
	// per completed request, warm-up excluded.
	CPUPerRequestUS float64 `json:"cpu_per_request_us"`
	// CacheHitRate is the classifier cache hit rate over the measured phase.
	CacheHitRate *float64 `json:"classifier_cache_hit_rate,omitempty"`
	Profile      string   `json:"cpu_profile,omitempty"`
	Error        string   `json:"error,omitempty"`
}

func newReport(label string, cfg runConfig, s Settings, res phaseResult) *Report {
	r := &Report{
		Label: label, Addr: cfg.addr, Settings: s, Sent: res.sent,
		Completed: res.rec.done, OK: res.rec.ok,
		Errors: copyCounts(res.rec.errors), Immediate: copyCounts(res.rec.immediate), Targets: copyCounts(res.rec.targets),
		ElapsedSec: res.elapsed.Seconds(), Latency: map[string]Summary{}, Workers: res.maxWorkers,
	}
	if res.elapsed > 0 {
		r.Throughput = float64(res.rec.done) / res.elapsed.Seconds()
		r.Goodput = float64(res.rec.ok) / res.elapsed.Seconds()
	}
	for _, p := range phases {
		if p == phaseQueue && s.Mode != "open" {
			continue
		}
		r.Latency[p] = summarize(*res.rec.lat[p])
	}
	return r
}

// ErrorCount is the number of requests that failed.
func (r *Report) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

func ms(us float64) string { return fmt.Sprintf("%.3f", us/1e3) }

func mb(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }

// writeTable prints r for people.
func (r *Report) writeTable(out io.Writer) {
	s := r.Settings
	fmt.Fprintf(out, "== %s (%s) ==\n", r.Label, r.Addr)
	if s.Mode == "open" {
		fmt.Fprintf(out, "open loop %.0f req/s, %d conns, bodies %s, unique %.2f, %.1fs (+%.1fs warm-up)\n",
			s.Rate, s.Conns, s.Sizes, s.Unique, r.ElapsedSec, s.WarmupSec)
	} else {
		fmt.Fprintf(out, "closed loop %d streams, %d conns, bodies %s, unique %.2f, %.1fs (+%.1fs warm-up)\n",
			s.Concurrency, s.Conns, s.Sizes, s.Unique, r.ElapsedSec, s.WarmupSec)
	}
	fmt.Fprintf(out, "requests %d (sent %d), ok %d, errors %d, throughput %.0f req/s (ok: %.0f req/s), client workers %d\n",
		r.Completed, r.Sent, r.OK, r.ErrorCount(), r.Throughput, r.Goodput, r.Workers)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency ms\tp50\tp90\tp99\tp99.9\tmax\tmean\tcount\t")
	for _, p := range phases {
		l, ok := r.Latency[p]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", p, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean), l.Count)
	}
	tw.Flush()
	if len(r.Errors) > 0 {
		fmt.Fprintf(out, "errors: %s\n", countsLine(r.Errors))
	}
	if len(r.Immediate) > 0 {
		fmt.Fprintf(out, "immediate responses by status: %s\n", countsLine(r.Immediate))
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(out, "targets: %s\n", countsLine(r.Targets))
	}
	if sv := r.Server; sv != nil {
		if sv.Error != "" {
			fmt.Fprintf(out, "server metrics: %s\n", sv.Error)
		} else {
			fmt.Fprintf(out, "server RSS MB before %s, after %s (max %s, mid %s, end %s during); goroutines before %.0f, after %.0f (max %.0f); CPU %.0f µs/request\n",
				mb(sv.Before.RSSBytes), mb(sv.After.RSSBytes), mb(sv.During.RSSMaxBytes), mb(sv.During.RSSMidBytes), mb(sv.During.RSSEndBytes),
				sv.Before.Goroutines, sv.After.Goroutines, sv.During.GoroutinesMax, sv.CPUPerRequestUS)
		}
		if sv.CacheHitRate != nil {
			fmt.Fprintf(out, "classifier cache hit rate %.1f%%\n", *sv.CacheHitRate*100)
		}
		if sv.Profile != "" {
			fmt.Fprintf(out, "CPU profile: %s (go tool pprof -top %s)\n", sv.Profile, sv.Profile)
		}
	}
	fmt.Fprintln(out)
}

func countsLine[K cmp.Ordered](m map[K]int64) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%v=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func writeJSON(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	return nil
}
