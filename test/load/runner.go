package main

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// runConfig is one measurement: where, how hard, and with what bodies.
type runConfig struct {
	addr           string
	conns          int
	concurrency    int           // closed loop
	rate           float64       // open loop when > 0
	maxWorkers     int           // open loop: at most this many requests in flight
	requests       int           // stop after this many (0: use duration)
	duration       time.Duration // stop after this long (0: use requests)
	warmup         time.Duration
	msgTimeout     time.Duration
	streamTimeout  time.Duration
	expect         string
	allowImmediate bool
	fullDecode     bool // decode dynamic_metadata too (codec.go)
}

// recorder collects one worker's outcomes; workers never share one, so
// recording takes no lock. Recorders are merged when the run ends.
type recorder struct {
	lat       map[string]*samples
	ok        int64
	errors    map[string]int64
	immediate map[int]int64
	targets   map[string]int64
	done      int64
}

func newRecorder() *recorder {
	r := &recorder{lat: map[string]*samples{}, errors: map[string]int64{}, immediate: map[int]int64{}, targets: map[string]int64{}}
	for _, p := range phases {
		r.lat[p] = new(samples)
	}
	return r
}

func (r *recorder) record(o outcome) {
	r.done++
	for ph, d := range o.lat {
		if d > 0 {
			r.lat[phases[ph]].add(d)
		}
	}
	if o.total > 0 {
		r.lat[phaseTotal].add(o.total)
	}
	r.lat[phaseQueue].add(o.queue)
	if o.immediate != 0 {
		r.immediate[o.immediate]++
	}
	if o.target != "" {
		r.targets[o.target]++
	}
	if o.err != "" {
		r.errors[o.err]++
		return
	}
	r.ok++
}

func (r *recorder) merge(o *recorder) {
	for k, s := range o.lat {
		*r.lat[k] = append(*r.lat[k], *s...)
	}
	r.ok += o.ok
	r.done += o.done
	for k, v := range o.errors {
		r.errors[k] += v
	}
	for k, v := range o.immediate {
		r.immediate[k] += v
	}
	for k, v := range o.targets {
		r.targets[k] += v
	}
}

// worker sends requests one at a time with its own buffers and recorder.
type worker struct {
	cfg     *runConfig
	corpus  *corpus
	headers *headerSet
	rec     *recorder
	buf     []byte
}

// loadRun is the state shared by the workers of one run.
type loadRun struct {
	cfg     runConfig
	corpus  *corpus
	headers *headerSet
	conns   []*grpc.ClientConn
	clients []extprocv3.ExternalProcessorClient
	next    atomic.Uint64 // request number, unique across warm-up and measurement
}

// dial opens cfg.conns HTTP/2 connections; Envoy's gRPC client likewise
// multiplexes all ext_proc streams of a worker thread over one connection.
func dial(cfg runConfig) ([]*grpc.ClientConn, error) {
	var out []*grpc.ClientConn
	for range cfg.conns {
		callOpts := []grpc.CallOption{grpc.MaxCallRecvMsgSize(32 << 20), grpc.MaxCallSendMsgSize(32 << 20)}
		if !cfg.fullDecode {
			callOpts = append(callOpts, grpc.ForceCodecV2(newClientCodec()))
		}
		cc, err := grpc.NewClient(cfg.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(callOpts...))
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, fmt.Errorf("dial %s: %w", cfg.addr, err)
		}
		cc.Connect()
		out = append(out, cc)
	}
	return out, nil
}

func newLoadRun(ctx context.Context, cfg runConfig, c *corpus) (*loadRun, error) {
	conns, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	r := &loadRun{cfg: cfg, corpus: c, headers: newHeaderSet(), conns: conns}
	if err := waitReady(ctx, conns, readyTimeout); err != nil {
		r.close()
		return nil, fmt.Errorf("connect to %s: %w", cfg.addr, err)
	}
	for _, cc := range conns {
		r.clients = append(r.clients, extprocv3.NewExternalProcessorClient(cc))
	}
	return r, nil
}

// readyTimeout bounds the wait for the connections before any load: a
// server that is not there is an error up front, not a run of failures.
const readyTimeout = 10 * time.Second

func waitReady(ctx context.Context, conns []*grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, cc := range conns {
		for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				return fmt.Errorf("connection %s after %v", s, timeout)
			}
		}
	}
	return nil
}

func (r *loadRun) close() {
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *loadRun) newWorker() *worker {
	return &worker{cfg: &r.cfg, corpus: r.corpus, headers: r.headers, rec: newRecorder()}
}

// phaseResult is what one measured phase produced.
type phaseResult struct {
	rec        *recorder
	elapsed    time.Duration
	maxWorkers int
	sent       int
}

func (r *loadRun) phase(ctx context.Context, cfg runConfig) phaseResult {
	if cfg.rate > 0 {
		return r.openLoop(ctx, cfg, realClock{})
	}
	return r.closedLoop(ctx, cfg)
}

// closedLoop keeps cfg.concurrency requests in flight: each worker sends
// its next request as soon as the previous one is done.
func (r *loadRun) closedLoop(ctx context.Context, cfg runConfig) phaseResult {
	ctx, cancel := withDuration(ctx, cfg.duration)
	defer cancel()
	var issued atomic.Int64
	workers := make([]*worker, cfg.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range workers {
		w := r.newWorker()
		workers[k] = w
		client := r.clients[k%len(r.clients)]
		wg.Go(func() {
			for ctx.Err() == nil {
				if cfg.requests > 0 && issued.Add(1) > int64(cfg.requests) {
					return
				}
				i := r.next.Add(1) - 1
				// The run's context ends the loop between requests; a
				// request in flight runs to completion on its own deadline.
				w.rec.record(w.exchange(context.WithoutCancel(ctx), client, i, time.Now()))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	rec := newRecorder()
	for _, w := range workers {
		rec.merge(w.rec)
	}
	return phaseResult{rec: rec, elapsed: elapsed, maxWorkers: cfg.concurrency, sent: int(rec.done)}
}

type job struct {
	i   uint64
	due time.Time
}

// openLoop sends cfg.rate requests per second on the schedule's timetable.
// A due request goes to an idle worker; when none is idle a new worker is
// started (up to cfg.maxWorkers), so a slow server never slows the
// schedule and every latency counts from the due time.
func (r *loadRun) openLoop(ctx context.Context, cfg runConfig, clk clock) phaseResult {
	jobs := make(chan job)
	var (
		mu      sync.Mutex
		workers []*worker
		wg      sync.WaitGroup
	)
	spawn := func(first job) {
		w := r.newWorker()
		mu.Lock()
		workers = append(workers, w)
		mu.Unlock()
		wg.Go(func() {
			run := func(j job) {
				client := r.clients[j.i%uint64(len(r.clients))]
				w.rec.record(w.exchange(context.WithoutCancel(ctx), client, j.i, j.due))
			}
			run(first)
			for j := range jobs {
				run(j)
			}
		})
	}
	n := 0
	start := clk.Now()
	sent := schedule(ctx, clk, start, cfg.rate, cfg.requests, cfg.duration, func(_ int, due time.Time) {
		j := job{i: r.next.Add(1) - 1, due: due}
		select {
		case jobs <- j:
			return
		default:
		}
		if n < cfg.maxWorkers {
			n++
			spawn(j)
			return
		}
		// At the in-flight cap the schedule waits; the wait shows up in
		// the latency of this and later requests, not as missing samples.
		jobs <- j
	})
	close(jobs)
	wg.Wait()
	elapsed := clk.Now().Sub(start)
	rec := newRecorder()
	for _, w := range workers {
		rec.merge(w.rec)
	}
	return phaseResult{rec: rec, elapsed: elapsed, maxWorkers: n, sent: sent}
}

func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// copyCounts returns a copy of m for the report.
func copyCounts[K comparable](m map[K]int64) map[K]int64 { return maps.Clone(m) }
