// Command load measures an ext_proc server the way Envoy drives it: one
// gRPC stream per HTTP request carrying request_headers, the BUFFERED
// request_body and response_headers, each answered before the next is sent,
// over a few multiplexed HTTP/2 connections. It runs closed loop (-c
// streams, -n requests or -d duration) or at a constant rate (-rate, latency
// measured from each request's due time so a slow server cannot hide its
// queueing), and reports throughput, exact latency percentiles per phase and
// per request, errors by kind, and the server's RSS, goroutines and CPU per
// request read from its admin /metrics.
//
// It is also the null processor (-null-server), the floor Switchyard is
// measured against, and -compare starts both as separate processes and
// measures them with identical settings, printing the Switchyard/null
// ratios that issue 9's targets use.
//
//	go run ./test/load -compare -c 32 -size 2k -d 20s -rounds 3
//	go run ./test/load -addr 127.0.0.1:50051 -admin 127.0.0.1:9090 -rate 2000 -d 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errFailed):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
}

// errFailed means the run completed but some requests failed.
var errFailed = errors.New("requests failed")

func numCPU() int { return runtime.NumCPU() }

type options struct {
	run                 runConfig
	admin               string
	sizes               string
	pool                int
	unique              float64
	seed, nonce         uint64
	model               string
	jsonFile, profile   string
	clientProfile       string
	dumpCorpus          string
	nullServer, compare bool
	cmp                 compareOptions
	quiet               bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.run.addr, "addr", "127.0.0.1:50051", "ext_proc gRPC address of the server under test (with -null-server: where to listen)")
	fs.StringVar(&o.admin, "admin", "", "admin HTTP address of the server, for /metrics (RSS, goroutines, CPU) and pprof; empty: skip")
	fs.IntVar(&o.run.conns, "conns", 2, "HTTP/2 connections the streams are spread over (Envoy: about one per worker thread)")
	fs.IntVar(&o.run.concurrency, "c", 32, "closed loop: concurrent streams")
	fs.Float64Var(&o.run.rate, "rate", 0, "open loop: requests per second on a fixed timetable (0: closed loop)")
	fs.IntVar(&o.run.maxWorkers, "max-workers", 10000, "open loop: most requests in flight at once")
	fs.IntVar(&o.run.requests, "n", 0, "requests to measure (0: run for -d)")
	fs.DurationVar(&o.run.duration, "d", 10*time.Second, "how long to measure (0: until -n requests)")
	fs.DurationVar(&o.run.warmup, "warmup", 2*time.Second, "load before measuring, discarded (connections, caches, heap)")
	fs.DurationVar(&o.run.msgTimeout, "msg-timeout", 200*time.Millisecond, "an answer slower than this is an error, as Envoy's message_timeout answers 504")
	fs.DurationVar(&o.run.streamTimeout, "stream-timeout", 10*time.Second, "give up on a stream after this long")
	fs.StringVar(&o.run.expect, "expect", expectRoute, "what a correct body answer is: route (x-switchyard-target + clear_route_cache) or continue")
	fs.BoolVar(&o.run.fullDecode, "full-decode", false, "decode every answer with protobuf-go, dynamic_metadata included (default: skip it and decode the expected answers by hand, see codec.go and answer.go)")
	fs.BoolVar(&o.run.allowImmediate, "allow-immediate", false, "count immediate responses without calling them errors")
	fs.StringVar(&o.sizes, "size", "2k", "body size class(es), comma separated: 1k, 2k, 8k, 64k or bytes")
	fs.IntVar(&o.pool, "pool", 64, "distinct bodies per size class")
	fs.Float64Var(&o.unique, "unique", 0.8, "share of requests whose prompt the server has not seen (the rest repeat pool bodies: classifier cache hits)")
	fs.Uint64Var(&o.seed, "seed", 1, "corpus seed: same seed, same bodies")
	fs.Uint64Var(&o.nonce, "nonce", 0, "base of the unique prompt numbers (0: from the clock, so a long-running server sees new prompts each run)")
	fs.StringVar(&o.model, "model", "auto", "the model field of every body")
	fs.StringVar(&o.jsonFile, "json", "", "write machine-readable results to this file")
	fs.StringVar(&o.profile, "profile", "", "save a CPU profile of the measured phase from -admin's /debug/pprof to this file (-compare: a directory)")
	fs.StringVar(&o.clientProfile, "client-profile", "", "save a CPU profile of this load process (the client side, whole run) to this file")
	fs.StringVar(&o.dumpCorpus, "dump-corpus", "", "write one body of each pool template to this directory and exit")
	fs.BoolVar(&o.nullServer, "null-server", false, "serve the null processor on -addr (admin on -admin) until interrupted")
	fs.BoolVar(&o.compare, "compare", false, "start the null processor and Switchyard, measure both with these settings, print the ratios")
	fs.IntVar(&o.cmp.rounds, "rounds", 3, "-compare: rounds of null + Switchyard (the order alternates); medians are reported")
	fs.StringVar(&o.cmp.switchyard, "switchyard", "bin/switchyard", "-compare: Switchyard binary (relative paths are from the module root when building)")
	fs.BoolVar(&o.cmp.build, "build", true, "-compare: go build the Switchyard binary first")
	fs.StringVar(&o.cmp.config, "config", "", "-compare: Switchyard config file (default: its embedded config)")
	fs.DurationVar(&o.cmp.interleave, "interleave", 0, "-compare: run both servers at once and alternate the load between them in slices this long (ABBA order) until each has had -d; 0: one after the other")
	fs.BoolVar(&o.quiet, "q", false, "no progress lines and, with -compare, no per-run tables")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["n"] && !set["d"] {
		o.run.duration = 0 // -n alone means exactly n requests
	}
	o.cmp.jsonFile, o.cmp.quiet = o.jsonFile, o.quiet
	if o.cmp.interleave < 0 {
		return nil, fmt.Errorf("-interleave cannot be negative")
	}
	if o.cmp.interleave > 0 && (!o.compare || o.run.duration <= 0 || set["n"]) {
		return nil, fmt.Errorf("-interleave needs -compare and -d (not -n)")
	}
	if o.compare {
		o.cmp.profileDir, o.profile = o.profile, ""
	}
	if o.nonce == 0 {
		o.nonce = uint64(time.Now().UnixNano())
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.clientProfile != "" {
		f, err := os.Create(o.clientProfile)
		if err != nil {
			return fmt.Errorf("client profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("client profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if o.nullServer {
		return runNullServer(ctx, o.run.addr, o.admin)
	}
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		return err
	}
	c, err := newCorpus(o.seed, sizes, o.pool, o.unique, o.model, o.nonce)
	if err != nil {
		return err
	}
	if o.dumpCorpus != "" {
		return dumpCorpus(c, o.dumpCorpus, stdout)
	}
	if err := o.run.validate(); err != nil {
		return err
	}
	mode := "closed"
	if o.run.rate > 0 {
		mode = "open"
	}
	m := measurement{
		label: "switchyard", run: o.run, corpus: c, admin: o.admin, profile: o.profile,
		settings: Settings{
			Mode: mode, Conns: o.run.conns, Requests: o.run.requests, DurationSec: o.run.duration.Seconds(),
			WarmupSec: o.run.warmup.Seconds(), Sizes: o.sizes, Pool: o.pool, Unique: o.unique, Seed: o.seed,
			Expect: o.run.expect, MsgTimeoutMS: float64(o.run.msgTimeout) / 1e6,
			ClientProcs: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		},
	}
	if mode == "open" {
		m.settings.Rate = o.run.rate
	} else {
		m.settings.Concurrency = o.run.concurrency
	}
	if o.run.expect == expectContinue {
		m.label = "null processor"
	}
	if !o.quiet {
		m.progress = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	if o.compare {
		cmp, err := runCompare(ctx, stdout, o.cmp, m, sizes)
		if err != nil {
			return err
		}
		if cmp.Null.Errors+cmp.Sy.Errors > 0 {
			return errFailed
		}
		return nil
	}
	rep, err := m.execute(ctx)
	if err != nil {
		return err
	}
	rep.writeTable(stdout)
	if o.jsonFile != "" {
		if err := writeJSON(o.jsonFile, rep); err != nil {
			return err
		}
	}
	if rep.ErrorCount() > 0 {
		return errFailed
	}
	return nil
}

// dumpCorpus writes each pool template, rendered with its pool number, so
// the bodies can be read or replayed with `switchyard explain`.
func dumpCorpus(c *corpus, dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dump corpus: %w", err)
	}
	for i := range c.pool {
		t := &c.pool[i]
		name := filepath.Join(dir, fmt.Sprintf("%03d-%dk-%s.json", i, t.size/1024, t.kind))
		if err := os.WriteFile(name, t.render(nil, uint64(i)), 0o644); err != nil {
			return fmt.Errorf("dump corpus: %w", err)
		}
	}
	fmt.Fprintf(stdout, "wrote %d bodies to %s\n", len(c.pool), dir)
	return nil
}
