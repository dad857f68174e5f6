package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ratios compare Switchyard with the null processor measured in the same
// round: throughput is Switchyard/null of correctly answered requests per
// second (goodput: higher is better, 1 is the floor's speed; a fast error
// must not count as work done), the latency ratios are Switchyard/null of
// the whole request (lower is better, 1 is the floor's latency).
type Ratios struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p999"`
}

func ratiosOf(null, sy *Report) Ratios {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	n, s := null.Latency[phaseTotal], sy.Latency[phaseTotal]
	return Ratios{
		Throughput: div(sy.Goodput, null.Goodput),
		P50:        div(s.P50, n.P50),
		P99:        div(s.P99, n.P99),
		P999:       div(s.P999, n.P999),
	}
}

// Round is one null run and one Switchyard run with identical settings.
type Round struct {
	Null       *Report `json:"null"`
	Switchyard *Report `json:"switchyard"`
	Ratios     Ratios  `json:"ratios"`
}

// Comparison is the -compare result: every round, the medians and the
// issue's targets checked against the medians.
type Comparison struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	// InterleaveSec is the slice length of an interleaved comparison (0:
	// each server measured on its own, one after the other).
	InterleaveSec float64       `json:"interleave_seconds,omitempty"`
	Rounds        []Round       `json:"rounds"`
	Median        Ratios        `json:"median_ratios"`
	Null          MedianFigures `json:"null_median"`
	Sy            MedianFigures `json:"switchyard_median"`
	Targets       []TargetCheck `json:"targets"`
}

// MedianFigures are per-server medians across rounds.
type MedianFigures struct {
	Goodput float64 `json:"goodput_rps"`
	P50US   float64 `json:"p50_us"`
	P99US   float64 `json:"p99_us"`
	P999US  float64 `json:"p999_us"`
	Errors  int64   `json:"errors_total"`
}

// TargetCheck is one of issue 9's targets against the median ratio.
type TargetCheck struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Pass bool    `json:"pass"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (c *Comparison) summarize(mode string, sizes []int) {
	col := func(f func(Round) float64) float64 {
		var v []float64
		for _, r := range c.Rounds {
			v = append(v, f(r))
		}
		return median(v)
	}
	c.Median = Ratios{
		Throughput: col(func(r Round) float64 { return r.Ratios.Throughput }),
		P50:        col(func(r Round) float64 { return r.Ratios.P50 }),
		P99:        col(func(r Round) float64 { return r.Ratios.P99 }),
		P999:       col(func(r Round) float64 { return r.Ratios.P999 }),
	}
	fig := func(get func(Round) *Report) MedianFigures {
		var errs int64
		for _, r := range c.Rounds {
			errs += get(r).ErrorCount()
		}
		return MedianFigures{
			Goodput: col(func(r Round) float64 { return get(r).Goodput }),
			P50US:   col(func(r Round) float64 { return get(r).Latency[phaseTotal].P50 }),
			P99US:   col(func(r Round) float64 { return get(r).Latency[phaseTotal].P99 }),
			P999US:  col(func(r Round) float64 { return get(r).Latency[phaseTotal].P999 }),
			Errors:  errs,
		}
	}
	c.Null = fig(func(r Round) *Report { return r.Null })
	c.Sy = fig(func(r Round) *Report { return r.Switchyard })
	c.Targets = targetsFor(mode, sizes, c.Median)
}

// targetsFor returns issue 9's targets that apply to this kind of run:
// closed loop → throughput (85% of the floor, 60% with 64 KB bodies); open
// loop → p99 ≤ 1.25x and p99.9 ≤ 1.5x the floor's.
func targetsFor(mode string, sizes []int, m Ratios) []TargetCheck {
	if mode == "open" {
		return []TargetCheck{
			{Name: "p99 ratio", Want: "<= 1.25", Got: m.P99, Pass: m.P99 <= 1.25},
			{Name: "p99.9 ratio", Want: "<= 1.50", Got: m.P999, Pass: m.P999 <= 1.5},
		}
	}
	want := 0.85
	if slices.Max(sizes) >= 64<<10 {
		want = 0.60
	}
	return []TargetCheck{{Name: "throughput ratio", Want: fmt.Sprintf(">= %.2f", want), Got: m.Throughput, Pass: m.Throughput >= want}}
}

func (c *Comparison) writeTable(out io.Writer) {
	fmt.Fprintf(out, "== comparison, %d rounds (%s; %s) ==\n", len(c.Rounds), c.Date, c.Machine)
	fmt.Fprintf(out, "%-6s %12s %12s %10s %10s %10s %10s %10s %8s\n", "round", "null ok/s", "sy ok/s", "thr ratio", "null p99", "sy p99", "p99 ratio", "p99.9 rat", "sy errs")
	for i, r := range c.Rounds {
		fmt.Fprintf(out, "%-6d %12.0f %12.0f %10.3f %10s %10s %10.3f %10.3f %8d\n", i+1,
			r.Null.Goodput, r.Switchyard.Goodput, r.Ratios.Throughput,
			ms(r.Null.Latency[phaseTotal].P99), ms(r.Switchyard.Latency[phaseTotal].P99), r.Ratios.P99, r.Ratios.P999,
			r.Switchyard.ErrorCount())
	}
	fmt.Fprintf(out, "median: goodput %.0f vs %.0f ok req/s (ratio %.3f); p50 %s vs %s ms (%.3f); p99 %s vs %s ms (%.3f); p99.9 %s vs %s ms (%.3f)\n",
		c.Sy.Goodput, c.Null.Goodput, c.Median.Throughput,
		ms(c.Sy.P50US), ms(c.Null.P50US), c.Median.P50,
		ms(c.Sy.P99US), ms(c.Null.P99US), c.Median.P99,
		ms(c.Sy.P999US), ms(c.Null.P999US), c.Median.P999)
	for _, t := range c.Targets {
		verdict := "FAIL"
		if t.Pass {
			verdict = "pass"
		}
		fmt.Fprintf(out, "target %s %s: %.3f %s\n", t.Name, t.Want, t.Got, verdict)
	}
}

// serverProc is a server the tool started and will stop.
type serverProc struct {
	name        string
	cmd         *exec.Cmd
	grpc, admin string
	exited      chan struct{}
	logs        *tailBuffer
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tailBuffer keeps recent server output for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.Len() > 64<<10 {
		t.b.Reset()
	}
	return t.b.Write(p)
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// startServer runs argv (the addresses are appended by the caller) with
// the environment of this process, so GOMAXPROCS and GOGC are the same for
// both servers, and waits until admin /readyz answers 200.
func startServer(ctx context.Context, name string, argv []string, grpcAddr, adminAddr string) (*serverProc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	logs := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &serverProc{name: name, cmd: cmd, grpc: grpcAddr, admin: adminAddr, exited: make(chan struct{}), logs: logs}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited during start-up: %s\n%s", name, cmd.ProcessState, lastLines(logs.String(), 20))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		default:
		}
		if ready(ctx, adminAddr) {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready at http://%s/readyz after 60s:\n%s", name, adminAddr, lastLines(logs.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(ctx context.Context, admin string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
	if err != nil {
		return false
	}
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM, waits up to 15 s for the graceful drain, then kills.
func (p *serverProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// moduleRoot finds the Switchyard module root above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/switchyard-llm/switchyard\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the switchyard module; pass -switchyard with -build=false")
		}
		dir = parent
	}
}

// buildSwitchyard runs `go build -tags vtprotobuf -o bin .` in the module
// root, as `make build` does.
func buildSwitchyard(ctx context.Context, bin string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "vtprotobuf", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build switchyard: %w\n%s", err, out)
	}
	return bin, nil
}

// compareOptions drive -compare.
type compareOptions struct {
	rounds     int
	switchyard string // binary path
	build      bool
	config     string // Switchyard --config; "" for the embedded default
	profileDir string // save a CPU profile of each Switchyard run here
	jsonFile   string
	quiet      bool
	// interleave > 0 runs both servers at once and alternates the load
	// between them in slices this long (see interleaved).
	interleave time.Duration
}

// runCompare measures the null processor and Switchyard with identical
// settings, alternating which goes first, for opts.rounds rounds. Each run
// gets a freshly started server so RSS and goroutines start from idle.
func runCompare(ctx context.Context, out io.Writer, co compareOptions, base measurement, sizes []int) (*Comparison, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary for the null processor: %w", err)
	}
	bin := co.switchyard
	if co.build {
		base.progressf("building switchyard into %s", bin)
		if bin, err = buildSwitchyard(ctx, bin); err != nil {
			return nil, err
		}
	}
	if co.profileDir != "" {
		if err := os.MkdirAll(co.profileDir, 0o755); err != nil {
			return nil, fmt.Errorf("profile dir: %w", err)
		}
	}
	cmp := &Comparison{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), InterleaveSec: co.interleave.Seconds()}
	for round := range co.rounds {
		order := []string{"null", "switchyard"}
		if round%2 == 1 {
			order = []string{"switchyard", "null"}
		}
		var runs [2]*measurement
		for k, which := range order {
			grpcAddr, err := freeAddr()
			if err != nil {
				return nil, err
			}
			adminAddr, err := freeAddr()
			if err != nil {
				return nil, err
			}
			m := base
			m.run.addr, m.admin = grpcAddr, adminAddr
			if which == "null" {
				m.run.expect, m.settings.Expect = expectContinue, expectContinue
				m.label = fmt.Sprintf("null processor, round %d", round+1)
				m.argv = []string{self, "-null-server", "-addr", grpcAddr, "-admin", adminAddr}
			} else {
				m.label = fmt.Sprintf("switchyard, round %d", round+1)
				m.argv = []string{bin, "serve", "--grpc-addr", grpcAddr, "--admin-addr", adminAddr, "--log-level", "warn"}
				if co.config != "" {
					m.argv = append(m.argv, "--config", co.config)
				}
				if co.profileDir != "" {
					m.argv = append(m.argv, "--pprof")
					m.profile = filepath.Join(co.profileDir, fmt.Sprintf("switchyard-cpu-round%d.pprof", round+1))
				}
			}
			m.settings.InterleaveSec = co.interleave.Seconds()
			runs[k] = &m
		}
		var reps [2]*Report
		var err error
		if co.interleave > 0 {
			reps, err = interleaved(ctx, runs, co.interleave, startFor)
		} else {
			for k, m := range runs {
				if reps[k], err = m.alone(ctx); err != nil {
					break
				}
			}
		}
		if err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var rd Round
		for k, which := range order {
			if !co.quiet {
				reps[k].writeTable(out)
			}
			if which == "null" {
				rd.Null = reps[k]
			} else {
				rd.Switchyard = reps[k]
			}
		}
		rd.Ratios = ratiosOf(rd.Null, rd.Switchyard)
		cmp.Rounds = append(cmp.Rounds, rd)
	}
	cmp.summarize(base.settings.Mode, sizes)
	cmp.writeTable(out)
	if co.jsonFile != "" {
		if err := writeJSON(co.jsonFile, cmp); err != nil {
			return cmp, err
		}
	}
	return cmp, nil
}

// startFor starts m's server from m.argv.
func startFor(ctx context.Context, m *measurement) (func(), error) {
	m.progressf("starting %s", m.label)
	srv, err := startServer(ctx, m.label, m.argv, m.run.addr, m.admin)
	if err != nil {
		return nil, err
	}
	return srv.stop, nil
}

// alone starts m's server, measures it and stops it.
func (m *measurement) alone(ctx context.Context) (*Report, error) {
	stop, err := startFor(ctx, m)
	if err != nil {
		return nil, err
	}
	defer stop()
	rep, err := m.execute(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.label, err)
	}
	return rep, nil
}

// interleaved runs both servers at once and loads them in turn, slice by
// slice (ABBA order: A B B A A B ...), until each has been measured for
// its run's duration. A change in the machine's speed then reaches both
// within a slice, instead of one server's whole run. The server not being
// loaded is idle; each server's CPU per request counts its own process
// over the whole window.
// start starts a run's server and returns the function that stops it.
func interleaved(ctx context.Context, runs [2]*measurement, slice time.Duration, start func(context.Context, *measurement) (stop func(), err error)) ([2]*Report, error) {
	var reps [2]*Report
	var sess [2]*session
	for _, m := range runs {
		stop, err := start(ctx, m)
		if err != nil {
			return reps, err
		}
		defer stop()
	}
	for k, m := range runs {
		s, err := m.open(ctx)
		if err != nil {
			if k > 0 {
				sess[0].lr.close()
			}
			return reps, fmt.Errorf("%s: %w", m.label, err)
		}
		sess[k] = s
	}
	total := runs[0].run.duration
	for k := range sess {
		sess[k].start(ctx, total*2)
	}
	for i, done := 0, time.Duration(0); done < total && ctx.Err() == nil; i++ {
		d := min(slice, total-done)
		for _, k := range abba(i) {
			cfg := runs[k].run
			cfg.duration = d
			sess[k].measure(ctx, cfg)
		}
		done += d
	}
	for k := range sess {
		reps[k] = sess[k].finish(ctx)
	}
	return reps, nil
}

// abba is the order of the two runs in slice pair i: 0 1, 1 0, 0 1, ...
func abba(i int) [2]int {
	if i%2 == 1 {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}

// machine describes the host for the report: CPU model and count.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs %s", numCPU(), model)
}
