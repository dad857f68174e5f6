package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// replayLine is one output line of `switchyard replay`.
type replayLine struct {
	Line    int           `json:"line"`
	Target  string        `json:"target"`
	Tier    string        `json:"tier"`
	Model   string        `json:"model"`
	Allow   bool          `json:"allow"`
	Status  int           `json:"status"`
	Reason  string        `json:"reason"`
	Code    string        `json:"code,omitempty"`
	Signals replaySignals `json:"signals"`
	// Estimated tokens and cost of this request on the chosen model, and on
	// the most expensive model of the portfolio.
	EstInputTokens  int64   `json:"est_input_tokens"`
	EstOutputTokens int64   `json:"est_output_tokens"`
	EstCostUSD      float64 `json:"est_cost_usd"`
	BaselineCostUSD float64 `json:"baseline_cost_usd"`
	Error           string  `json:"error,omitempty"`
}

type replaySignals struct {
	Intent           string        `json:"intent"`
	IntentConfidence float64       `json:"intent_confidence"`
	Complexity       float64       `json:"complexity"`
	Keywords         []string      `json:"keywords"`
	PII              []pii.Finding `json:"pii"`
	Injection        struct {
		Score   float64  `json:"score"`
		Matched []string `json:"matched"`
	} `json:"injection"`
}

type replayJob struct {
	seq, n int // order of the job, and its line number
	line   []byte
}

type replayResult struct {
	seq  int
	line replayLine
}

// runReplay routes a JSONL traffic log offline and reports where each
// request would go and what the traffic would cost.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("replay", "replay [--config FILE] --in FILE.jsonl [--out FILE.jsonl] [--output-tokens N] [--path PATH]", stderr)
	cfgPath := flags.String("config", "", "config file (default: the embedded sample config)")
	in := flags.String("in", "", "input JSONL: one request body per line, or {\"headers\":{...},\"body\":{...}} (- for stdin)")
	out := flags.String("out", "", "output JSONL (default stdout)")
	outTokens := flags.Int64("output-tokens", 256, "output tokens assumed per request when it sets no max_tokens")
	path := flags.String("path", "/v1/chat/completions", "request path for lines that do not give one")
	workers := flags.Int("workers", runtime.GOMAXPROCS(0), "parallel workers")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if *in == "" || flags.NArg() > 0 {
		return fmt.Errorf("%w: replay needs --in FILE.jsonl", ErrUsage)
	}
	src := io.Reader(os.Stdin)
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("replay input: %w", err)
		}
		defer f.Close()
		src = f
	}
	dst := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("replay output: %w", err)
		}
		defer f.Close()
		dst = f
	}
	rt, err := route.Load(ctx, *cfgPath, zap.NewNop(), telemetry.NewMetrics())
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	defer rt.Close()
	r := &replayer{rt: rt, outTokens: *outTokens, path: *path, baseline: mostExpensive(rt.Snapshot())}
	start := time.Now()
	sum, err := r.run(ctx, src, dst, max(*workers, 1))
	if err != nil {
		return err
	}
	sum.print(stderr, time.Since(start), r.baseline)
	return nil
}

type replayer struct {
	rt        *route.Router
	outTokens int64
	path      string
	baseline  *config.ModelInfo
}

// run reads lines, decides them on workers and writes results in input order.
func (r *replayer) run(ctx context.Context, src io.Reader, dst io.Writer, workers int) (*replaySummary, error) {
	jobs := make(chan replayJob, workers*64)
	results := make(chan replayResult, workers*64)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- replayResult{j.seq, r.decide(ctx, j)}
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		br := bufio.NewReaderSize(src, 1<<20)
		n, seq := 0, 0
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				n++
			}
			if len(bytes.TrimSpace(line)) > 0 {
				select {
				case jobs <- replayJob{seq: seq, n: n, line: line}:
					seq++
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr <- err
				}
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	sum := newReplaySummary()
	bw := bufio.NewWriterSize(dst, 1<<20)
	// Workers finish out of order; hold results until their turn.
	pending := map[int]replayLine{}
	next := 0
	for res := range results {
		pending[res.seq] = res.line
		for {
			l, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			b, _ := json.Marshal(l)
			bw.Write(b)
			bw.WriteByte('\n')
			sum.add(&l)
			next++
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("replay output: %w", err)
	}
	select {
	case err := <-readErr:
		return nil, fmt.Errorf("replay input: %w", err)
	default:
	}
	return sum, nil
}

// decide routes one input line.
func (r *replayer) decide(ctx context.Context, j replayJob) replayLine {
	out := replayLine{Line: j.n}
	line := bytes.TrimSpace(j.line)
	if !gjson.ValidBytes(line) {
		out.Error = "line is not valid JSON"
		return out
	}
	q := &route.Request{Method: "POST", Path: r.path, Headers: []route.Header{{Key: "content-type", Value: "application/json"}}}
	root := gjson.ParseBytes(line)
	if b := root.Get("body"); b.IsObject() && !root.Get("messages").Exists() && !root.Get("model").Exists() {
		q.Body = []byte(b.Raw)
		root.Get("headers").ForEach(func(k, v gjson.Result) bool {
			q.Headers = append(q.Headers, route.Header{Key: strings.ToLower(k.String()), Value: v.String()})
			return true
		})
		if p := root.Get("path").Str; p != "" {
			q.Path = p
		}
	} else {
		q.Body = line
	}
	d := r.rt.Decide(ctx, q, "replay")
	out.Target, out.Tier, out.Model, out.Allow, out.Reason = d.Target, d.Tier, d.Model, d.Allowed(), d.Reason
	out.Status, out.Code = d.Status, d.Code
	if d.Allowed() {
		out.Status = 200
	}
	s := &out.Signals
	s.Intent, s.IntentConfidence, s.Complexity = d.Signals.Intent, d.Signals.IntentConfidence, d.Signals.Complexity
	s.Keywords, s.PII = nonNil(d.Signals.Keywords), d.Signals.PII
	if s.PII == nil {
		s.PII = []pii.Finding{}
	}
	s.Injection.Score, s.Injection.Matched = d.Signals.Injection.Score, nonNil(d.Signals.Injection.Matched)
	outTok := r.outTokens
	if d.Request.MaxTokens > 0 {
		outTok = d.Request.MaxTokens
	}
	u := openai.Usage{InputTokens: int64(d.Signals.EstTokens), OutputTokens: outTok, Estimated: true}
	out.EstInputTokens, out.EstOutputTokens = u.InputTokens, u.OutputTokens
	if r.baseline != nil {
		out.BaselineCostUSD = openai.Price(u, r.baseline.Price.InputPerMTok, r.baseline.Price.OutputPerMTok)
	}
	if m, ok := r.rt.Snapshot().Model(d.Model); ok && d.Allowed() {
		out.EstCostUSD = openai.Price(u, m.Price.InputPerMTok, m.Price.OutputPerMTok)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mostExpensive is the model with the highest input+output price.
func mostExpensive(s *config.Snapshot) *config.ModelInfo {
	var best *config.ModelInfo
	for _, m := range s.Models() {
		if best == nil || m.Price.InputPerMTok+m.Price.OutputPerMTok > best.Price.InputPerMTok+best.Price.OutputPerMTok {
			best = m
		}
	}
	return best
}

type replaySummary struct {
	total, denied, malformed int
	byTarget, byTier         map[string]int
	cost, baseline           float64
	errLines                 []string
}

func newReplaySummary() *replaySummary {
	return &replaySummary{byTarget: map[string]int{}, byTier: map[string]int{}}
}

func (s *replaySummary) add(l *replayLine) {
	if l.Error != "" {
		s.malformed++
		if len(s.errLines) < 20 {
			s.errLines = append(s.errLines, fmt.Sprintf("line %d: %s", l.Line, l.Error))
		}
		return
	}
	s.total++
	if !l.Allow {
		s.denied++
		key := "denied(" + l.Reason + ")"
		s.byTarget[key]++
		return
	}
	s.byTarget[l.Target]++
	s.byTier[l.Tier]++
	s.cost += l.EstCostUSD
	s.baseline += l.BaselineCostUSD
}

func (s *replaySummary) print(w io.Writer, took time.Duration, baseline *config.ModelInfo) {
	for _, e := range s.errLines {
		fmt.Fprintf(w, "replay: %s\n", e)
	}
	rate := float64(s.total+s.malformed) / took.Seconds()
	fmt.Fprintf(w, "replay: %d requests (%d denied, %d malformed lines) in %s (%.0f requests/s)\n",
		s.total, s.denied, s.malformed, took.Round(time.Millisecond), rate)
	printCounts(w, "target", s.byTarget, s.total)
	printCounts(w, "tier", s.byTier, s.total)
	if baseline != nil && s.baseline > 0 {
		fmt.Fprintf(w, "estimated cost: $%.4f routed vs $%.4f all on %s: %.1f%% saved (token estimates × price table)\n",
			s.cost, s.baseline, baseline.Name, 100*(1-s.cost/s.baseline))
	}
}

func printCounts(w io.Writer, what string, m map[string]int, total int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "by %s:\n", what)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-28s %7d  %5.1f%%\n", k, m[k], 100*float64(m[k])/float64(max(total, 1)))
	}
}
