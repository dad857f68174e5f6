// Package policy embeds OPA as a Go library and turns Switchyard's routing
// proposal into a decision: it loads the Rego policies and data files
// (the shipped policies/ or the config's policy.dirs), mounts the config's
// policy.data at data.switchyard.config, compiles once with network
// built-ins disabled, prepares the decision query, and evaluates it per
// request with a deadline.
//
// Eval is on every request's path, so it does little besides OPA's own
// evaluation: the input is built as an AST value from the Go structs (no JSON
// round trip) with shared terms for known strings and input.targets built
// once; rules that cannot depend on the input are evaluated once per Engine
// and served from a cache (static.go); the query runs on topdown directly
// (hot.go); the deadline is checked from the evaluator's own cancel hook,
// with no timer or goroutine per call.
//
// Beside the request path it offers Explain (a decision with the rules that
// fired), RunTests (`opa test` for `switchyard policy test`), header
// redaction for the policy input, and the decision log record.
package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Errors returned by Eval. Callers branch on them with errors.Is; each maps
// to a policy error kind (metrics label) and to the configured failure mode.
var (
	// ErrUndefined: the query produced no decision for this input.
	ErrUndefined = errors.New("policy: decision is undefined")
	// ErrInvalidDecision: the decision does not have the documented shape.
	ErrInvalidDecision = errors.New("policy: invalid decision")
	// ErrTimeout: evaluation ran past policy.eval_timeout.
	ErrTimeout = errors.New("policy: evaluation timed out")
	// ErrEval: evaluation failed (conflicting rule values, a built-in error
	// in strict mode, a recovered panic). The OPA error is wrapped too.
	ErrEval = errors.New("policy: evaluation failed")
	// ErrLoad: New could not load, compile or prepare the policies.
	ErrLoad = errors.New("policy: load failed")
)

// DefaultQuery is the decision query when the config leaves policy.query empty.
const DefaultQuery = "data.switchyard.decision"

// ConfigErrorsQuery is evaluated once by New: a non-empty set of strings
// means the config's policy.data is wrong and the engine is not built.
const ConfigErrorsQuery = "data.switchyard.config_errors"

// explainTimeout bounds Explain, which traces and is not on the request path.
const explainTimeout = 10 * time.Second

// Options configures New.
type Options struct {
	Logger *zap.Logger
	// FS, when set, replaces the policy source (tests, embedding): the
	// config's policy.dirs are then paths inside FS, and no dirs means its
	// root.
	FS fs.FS
	// OnCache, when set, is told about every decision-cache lookup.
	OnCache func(hit bool)
}

// Engine is one compiled policy set bound to one config snapshot. It is
// immutable and safe for concurrent use; a reload builds a new Engine.
type Engine struct {
	log      *zap.Logger
	pq       rego.PreparedEvalQuery // for Explain (tracing)
	hot      hotQuery               // for Eval
	query    string
	targets  *ast.Term           // input.targets, built once
	known    map[string]struct{} // target names, to validate decisions
	timeout  time.Duration
	revision string
	sources  []string
	static   *staticNode // input-independent rules, evaluated once
	intern   internTable // shared terms for known strings
	headers  bool        // some policy reads input.request.headers
	memo     *memo       // decision cache; nil when off or unsafe
}

// New loads, compiles and prepares the policies for snap. Errors wrap
// ErrLoad; compile errors are a *CompileError listing file:line:col.
func New(ctx context.Context, snap *config.Snapshot, opts Options) (*Engine, error) {
	if snap == nil || snap.Config == nil {
		return nil, fmt.Errorf("%w: no config snapshot", ErrLoad)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	pc := snap.Config.Policy
	srcs, err := sourcesFor(pc.Dirs, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	set, err := loadFiles(srcs, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	cfgData, err := normalizeData(pc.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: policy.data: %w", ErrLoad, err)
	}
	targets := targetsData(snap)
	if err := mountConfig(set.data, cfgData, targets); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	store, err := newStore(set.data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	compiler, err := compileModules(set.modules, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	query := pc.Query
	if query == "" {
		query = DefaultQuery
	}
	if err := checkQueryDefined(compiler, query); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	pq, err := rego.New(
		rego.Query(query),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.UnsafeBuiltins(unsafeBuiltins),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: prepare %s: %w", ErrLoad, query, err)
	}
	targetsVal, err := ast.InterfaceToValue(targets)
	if err != nil {
		return nil, fmt.Errorf("%w: targets: %w", ErrLoad, err)
	}
	hot, err := newHotQuery(compiler, store, query)
	if err != nil {
		return nil, fmt.Errorf("%w: prepare %s: %w", ErrLoad, query, err)
	}
	e := &Engine{
		log:      log,
		pq:       pq,
		hot:      hot,
		query:    query,
		targets:  ast.NewTerm(targetsVal),
		known:    make(map[string]struct{}, len(snap.TargetNames)),
		timeout:  pc.EvalTimeout.D(),
		revision: set.revision(cfgData),
		sources:  set.names,
		intern:   newInternTable(snap),
		headers:  headersUsed(compiler),
		memo:     newMemo(compiler, pc.DecisionCacheSize, opts.OnCache),
	}
	for _, n := range snap.TargetNames {
		e.known[n] = struct{}{}
	}
	if e.timeout <= 0 {
		e.timeout = config.DefaultPolicyEvalTimeout
	}
	if err := e.checkConfig(ctx, compiler, store); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	static, n := buildStatic(ctx, compiler, store)
	e.static = static
	e.warmUp(ctx, snap)
	log.Info("policy loaded", zap.String("revision", e.revision), zap.String("query", query),
		zap.Int("files", len(e.sources)), zap.Int("static_rules", n), zap.Duration("eval_timeout", e.timeout))
	return e, nil
}

// warmUp evaluates once with a plain input so lazily built structures
// (rule indexes, sorted object keys) exist before the first request, which
// would otherwise pay for them inside its deadline. The result is ignored.
func (e *Engine) warmUp(ctx context.Context, snap *config.Snapshot) {
	in := &Input{Request: Request{Method: "POST", Path: "/v1/chat/completions"}}
	if len(snap.TargetNames) > 0 {
		in.Proposal = Proposal{Target: snap.TargetNames[0], Reason: "warm_up"}
	}
	budget := min(20*e.timeout, time.Second)
	c := newDeadline(ctx, budget)
	defer c.release()
	_, _ = e.hot.eval(ctx, e.inputValue(in), c, newOverlayCache(e.static))
}

// ReadsHeaders reports whether some loaded policy reads
// input.request.headers; when none does, the input carries {} and callers
// need not build the header map.
func (e *Engine) ReadsHeaders() bool { return e.headers }

// Revision is a short content hash of the loaded policies, data files and
// policy.data; it changes whenever any of them does.
func (e *Engine) Revision() string { return e.revision }

// Sources lists the policy and data files loaded (display names), for the
// reload watcher and `switchyard validate`.
func (e *Engine) Sources() []string { return append([]string(nil), e.sources...) }

// Query is the decision query the engine evaluates.
func (e *Engine) Query() string { return e.query }

// Eval evaluates the decision for one request. It never panics; errors wrap
// ErrUndefined, ErrInvalidDecision, ErrTimeout or ErrEval.
func (e *Engine) Eval(ctx context.Context, in *Input) (d Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("policy evaluation panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			d, err = Decision{}, fmt.Errorf("%w: panic: %v", ErrEval, r)
		}
	}()
	if in == nil {
		return Decision{}, fmt.Errorf("%w: nil input", ErrEval)
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	var key decisionKey
	if e.memo != nil {
		var hit bool
		if key, d, hit = e.memo.get(in); hit {
			return d, nil
		}
	}
	c := newDeadline(ctx, e.timeout)
	defer c.release()
	t, err := e.hot.eval(ctx, e.inputValue(in), c, newOverlayCache(e.static))
	if err != nil {
		return Decision{}, c.classify(ctx, err)
	}
	if t == nil {
		return Decision{}, ErrUndefined
	}
	d, err = e.finish(t, in)
	if err == nil && e.memo != nil {
		e.memo.cache.Put(key[0], key, d)
	}
	return d, err
}

// Cached reports whether this engine caches decisions (see memo.go).
func (e *Engine) Cached() bool { return e.memo != nil }

// Explain evaluates like Eval with tracing on and returns the decision with
// one line per rule that fired ("file:line: data.pkg.rule => value"), in
// evaluation order, without duplicates. It is for `switchyard explain`, not
// the request path.
func (e *Engine) Explain(ctx context.Context, in *Input) (d Decision, lines []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, lines, err = Decision{}, nil, fmt.Errorf("%w: panic: %v", ErrEval, r)
		}
	}()
	if in == nil {
		return Decision{}, nil, fmt.Errorf("%w: nil input", ErrEval)
	}
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	tracer := topdown.NewBufferTracer()
	vc := topdown.NewVirtualCache()
	rs, err := e.pq.Eval(ctx,
		rego.EvalParsedInput(e.inputValue(in)),
		rego.EvalQueryTracer(tracer),
		rego.EvalGenerateJSON(rawTerm),
		rego.EvalVirtualCache(vc),
	)
	lines = firedRules(*tracer, vc)
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, lines, fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return Decision{}, lines, fmt.Errorf("%w: %w", ErrEval, err)
	}
	d, err = e.decide(rs, in)
	return d, lines, err
}

// decide takes the decision out of a rego result set.
func (e *Engine) decide(rs rego.ResultSet, in *Input) (Decision, error) {
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, ErrUndefined
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("%w: unexpected result %T", ErrInvalidDecision, rs[0].Expressions[0].Value)
	}
	return e.finish(t, in)
}

// finish decodes and validates the decision and fills the defaults.
func (e *Engine) finish(t *ast.Term, in *Input) (Decision, error) {
	d, err := decodeDecision(t)
	if err != nil {
		return Decision{}, err
	}
	if !d.Allow {
		if d.Status == 0 {
			d.Status = 403
		}
		return d, nil
	}
	if d.Target == "" {
		d.Target = in.Proposal.Target
	}
	if d.Target == "" {
		return Decision{}, fmt.Errorf("%w: allowed without a target (and the proposal has none)", ErrInvalidDecision)
	}
	if _, ok := e.known[d.Target]; !ok {
		return Decision{}, fmt.Errorf("%w: target %q is not defined in the config", ErrInvalidDecision, truncate(d.Target, 64))
	}
	return d, nil
}

// checkConfig evaluates ConfigErrorsQuery once with input.targets only.
func (e *Engine) checkConfig(ctx context.Context, compiler *ast.Compiler, store storage.Store) error {
	ref := ast.MustParseRef(ConfigErrorsQuery)
	if len(compiler.GetRules(ref)) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	input := ast.NewObject(
		[2]*ast.Term{keyVersion, ast.InternedTerm(InputVersion)},
		[2]*ast.Term{keyTargets, e.targets},
	)
	rs, err := rego.New(
		rego.Query(ConfigErrorsQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.ParsedInput(input),
	).Eval(ctx)
	if err != nil {
		return fmt.Errorf("evaluate %s: %w", ConfigErrorsQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil
	}
	var msgs []string
	switch v := rs[0].Expressions[0].Value.(type) {
	case []any:
		for _, m := range v {
			msgs = append(msgs, fmt.Sprint(m))
		}
	default:
		return fmt.Errorf("%s must be a set of strings, got %T", ConfigErrorsQuery, v)
	}
	if len(msgs) == 0 {
		return nil
	}
	return &ConfigError{Problems: msgs}
}

// ConfigError lists what the policy's config_errors rule found wrong with
// policy.data.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "policy.data rejected by the policy:\n  " + strings.Join(e.Problems, "\n  ")
}

// checkQueryDefined refuses a query that no rule or data can ever answer:
// every request would fail with ErrUndefined.
func checkQueryDefined(c *ast.Compiler, query string) error {
	body, err := ast.ParseBody(query)
	if err != nil {
		return fmt.Errorf("policy.query %q: %w", query, err)
	}
	if len(body) != 1 {
		return nil
	}
	term, ok := body[0].Terms.(*ast.Term)
	if !ok {
		return nil
	}
	ref, ok := term.Value.(ast.Ref)
	if !ok || !ref.HasPrefix(ast.DefaultRootRef) {
		return nil
	}
	if len(c.GetRules(ref)) == 0 && len(c.GetRulesDynamic(ref)) == 0 {
		return fmt.Errorf("policy.query %s: no loaded policy defines it (check the package name and rule)", query)
	}
	return nil
}

// rawTerm keeps the result as an AST term: decodeDecision reads it directly,
// skipping OPA's conversion to map[string]any.
func rawTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

var noMetrics = metrics.NoOp()

// deadline is a topdown.Cancel that looks at the clock itself, every few
// evaluation steps, instead of a timer and a goroutine per evaluation.
// Evaluation is single-threaded, so only Cancel (from anywhere) is atomic.
type deadline struct {
	flag     atomic.Bool
	timedOut bool
	steps    uint32
	until    time.Time
	limit    time.Duration
	done     <-chan struct{}
}

var deadlinePool = sync.Pool{New: func() any { return new(deadline) }}

// checkEvery is how many Cancelled calls pass between clock reads (~25 ns each).
const checkEvery = 32

func newDeadline(ctx context.Context, timeout time.Duration) *deadline {
	c := deadlinePool.Get().(*deadline)
	c.flag.Store(false)
	c.timedOut, c.steps = false, 0
	c.until, c.limit = time.Now().Add(timeout), timeout
	if dl, ok := ctx.Deadline(); ok && dl.Before(c.until) {
		c.until = dl
	}
	c.done = ctx.Done()
	return c
}

func (c *deadline) release() {
	c.done = nil
	deadlinePool.Put(c)
}

// Cancel implements topdown.Cancel.
func (c *deadline) Cancel() { c.flag.Store(true) }

// Cancelled implements topdown.Cancel.
func (c *deadline) Cancelled() bool {
	if c.flag.Load() {
		return true
	}
	c.steps++
	if c.steps%checkEvery != 0 {
		return false
	}
	if !time.Now().Before(c.until) {
		c.timedOut = true
		c.flag.Store(true)
		return true
	}
	if c.done != nil {
		select {
		case <-c.done:
			c.flag.Store(true)
			return true
		default:
		}
	}
	return false
}

// classify maps an evaluation error to the package's sentinels.
func (c *deadline) classify(ctx context.Context, err error) error {
	if topdown.IsCancel(err) {
		if c.timedOut || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w (limit %s): %w", ErrTimeout, c.limit, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrEval, ctx.Err())
		}
	}
	return fmt.Errorf("%w: %w", ErrEval, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
