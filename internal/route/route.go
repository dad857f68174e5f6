// Package route is Switchyard's decision pipeline: request view → signals →
// routing table proposal → policy → Decision. It is pure Go with no gRPC or
// protobuf types; extproc turns a Decision into ext_proc responses.
package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/judge"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/signals"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// SignalSource computes the signals of a request (*signals.Engine).
type SignalSource interface {
	Compute(ctx context.Context, req *openai.Request, out *signals.Signals) error
	Close()
}

// Policy decides on a proposal (*policy.Engine).
type Policy interface {
	Eval(ctx context.Context, in *policy.Input) (policy.Decision, error)
	Revision() string
}

// Router is one compiled configuration: the snapshot, its signal engine and
// its policy. It is immutable; a reload builds a new Router.
type Router struct {
	snap    *config.Snapshot
	signals SignalSource
	policy  Policy
	log     *zap.Logger
	metrics *telemetry.Metrics

	secrets      *secretNames // policy.secret_headers and the default ones
	tenantHeader string
	// headers: the request headers are needed as a map (a loaded policy
	// reads input.request.headers, or the decision log shows them).
	headers        bool
	keywordTargets map[string]string // keyword rule -> target
	failOpen       bool
	judges         map[string]*judge.Judge // cascade target -> judge
	dlog           *policy.DecisionLogger  // nil when policy.decision_log is off
}

// Deps are what a Router is built from.
type Deps struct {
	Signals SignalSource
	Policy  Policy
	Logger  *zap.Logger
	Metrics *telemetry.Metrics
}

// New assembles a Router. Signals and Policy are required.
func New(snap *config.Snapshot, d Deps) (*Router, error) {
	if d.Signals == nil || d.Policy == nil {
		return nil, errors.New("route: signals and policy are required")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Metrics == nil {
		d.Metrics = telemetry.NewMetrics()
	}
	r := &Router{
		snap: snap, signals: d.Signals, policy: d.Policy, log: d.Logger, metrics: d.Metrics,
		tenantHeader:   snap.Config.Policy.TenantHeader,
		keywordTargets: map[string]string{},
		failOpen:       snap.Config.Server.FailureMode == config.FailOpen,
		dlog:           policy.NewDecisionLogger(d.Logger, snap.Config.Policy),
	}
	r.secrets = newSecretNames(snap.Config.Policy.SecretHeaders)
	r.headers = r.dlog.Debug()
	if hr, ok := d.Policy.(interface{ ReadsHeaders() bool }); !ok || hr.ReadsHeaders() {
		r.headers = true
	}
	r.judges = map[string]*judge.Judge{}
	for _, name := range snap.TargetNames {
		t, _ := snap.Target(name)
		if t.Target.Judge == nil {
			continue
		}
		j, err := judge.New(*t.Target.Judge)
		if err != nil {
			return nil, fmt.Errorf("targets.%s.judge: %w", name, err)
		}
		r.judges[name] = j
	}
	for name, k := range snap.Config.Routing.Keywords {
		if k.Target != "" {
			r.keywordTargets[name] = k.Target
		}
	}
	return r, nil
}

// Judge returns the cascade judge of a target (nil when it has none).
func (r *Router) Judge(target string) *judge.Judge { return r.judges[target] }

// Snapshot returns the config this router was built from.
func (r *Router) Snapshot() *config.Snapshot { return r.snap }

// PolicyRevision is the loaded policy's revision.
func (r *Router) PolicyRevision() string { return r.policy.Revision() }

// Close releases the signal engine's resources.
func (r *Router) Close() { r.signals.Close() }

// Header is one request header as Envoy sent it (lower-case key).
type Header struct {
	Key, Value string
}

// Request is what the router role knows about one HTTP request.
type Request struct {
	Method  string
	Path    string
	Headers []Header // lower-case keys, pseudo-headers included; x-switchyard-* already dropped
	Body    []byte
	// NoBody is true when the request ended at its headers.
	NoBody bool
}

// header returns the first value of a lower-case header key.
func (q *Request) header(key string) string {
	for i := range q.Headers {
		if q.Headers[i].Key == key {
			return q.Headers[i].Value
		}
	}
	return ""
}

// Outcomes of a decision (the "outcome" metric label).
const (
	OutcomeRouted      = "routed"      // a target was chosen
	OutcomePassthrough = "passthrough" // the body could not be read; default target
	OutcomeDenied      = "denied"      // the policy said no
	OutcomeRejected    = "rejected"    // the request is invalid (4xx)
	OutcomeError       = "error"       // Switchyard could not decide (5xx)
)

// Decision is the result of routing one request.
type Decision struct {
	ID      string
	Outcome string
	Target  string
	Tier    string
	Model   string // first model of the target
	Reason  string

	// For denials and errors: HTTP status, OpenAI error type and code, message.
	Status  int
	ErrType string
	Code    string
	Message string

	// Headers are extra request headers from the policy (already filtered).
	Headers map[string]string

	Request  policy.Request
	Signals  signals.Signals
	Proposal policy.Proposal
	// PolicyRevision is the revision of the policy that decided ("" if none ran).
	PolicyRevision string
	// PolicyErr is why the policy gave no decision (the failure mode decided).
	PolicyErr error
	// Shape, Stream and IncludeUsage describe the parsed body (response phase and accounting use them).
	Shape        openai.Shape
	Stream       bool
	IncludeUsage bool
	ResponseJSON bool

	Durations Durations

	// Scratch reused with a pooled Decision (DecideInto): the parsed body
	// view and the policy input, so neither is allocated per request.
	parsed openai.Request
	input  policy.Input
}

// Reset empties d for reuse (a pooled Decision): it keeps the capacity of
// the header map and of the signals' slices and drops everything else,
// the views of the request body included.
func (d *Decision) Reset() {
	hdrs, sig := d.Request.Headers, d.Signals
	clear(hdrs)
	sig.Reset()
	*d = Decision{Signals: sig}
	d.Request.Headers = hdrs
}

// Durations of the decision phases.
type Durations struct {
	Parse, Signals, Policy, Total time.Duration
}

// Allowed reports whether the request goes upstream.
func (d *Decision) Allowed() bool {
	return d.Outcome == OutcomeRouted || d.Outcome == OutcomePassthrough
}

// Decide routes one request. It never returns nil and never panics on bad
// input; errors become decisions with a status.
func (r *Router) Decide(ctx context.Context, q *Request, id string) *Decision {
	d := new(Decision)
	r.DecideInto(ctx, q, id, d)
	return d
}

// DecideInto is Decide writing into d, which it resets first: the router
// role keeps one Decision per pooled stream processor instead of
// allocating one per request.
func (r *Router) DecideInto(ctx context.Context, q *Request, id string, d *Decision) {
	start := time.Now()
	d.Reset()
	d.ID = id
	r.decide(ctx, q, d, start)
	d.Durations.Total = time.Since(start)
	r.record(d)
	r.logDecision(d)
}

// logDecision writes the decision log line: ids, tenant, target, reason and
// timings — never prompt text or header values (policy.debug_unredacted adds
// the proposal, signals and redacted headers).
func (r *Router) logDecision(d *Decision) {
	if r.dlog == nil {
		return
	}
	status := d.Status
	if d.Allowed() {
		status = 200
	}
	rec := policy.DecisionLog{ID: d.ID, Tenant: d.Request.Tenant, Target: d.Target, Reason: d.Reason,
		Allow: d.Allowed(), Status: status, PolicyRevision: d.PolicyRevision, EvalDuration: d.Durations.Policy,
		Err: d.PolicyErr, Proposal: &d.Proposal, Signals: &d.Signals, Headers: d.Request.Headers}
	r.dlog.Log(&rec)
}

func (r *Router) decide(ctx context.Context, q *Request, d *Decision, start time.Time) {
	cfg := r.snap.Config
	r.requestInput(q, &d.Request)
	if q.NoBody {
		// GET /v1/models and the like: nothing to read, but the policy still
		// decides (tenant and provider rules apply to every request).
		d.Proposal = policy.Proposal{Target: cfg.Routing.DefaultTarget, Reason: "no_body"}
		if t, ok := r.snap.Target(cfg.Routing.DefaultTarget); ok {
			d.Proposal.Tier = t.Tier
		}
		r.applyPolicy(ctx, d)
		return
	}
	if int64(len(q.Body)) > cfg.Server.MaxBodyBytes {
		r.reject(d, 413, openai.TypeInvalidRequest, "request_too_large",
			"request body is "+strconv.Itoa(len(q.Body))+" bytes; the limit is "+strconv.FormatInt(cfg.Server.MaxBodyBytes, 10))
		return
	}
	body, ok := r.decode(q, d)
	if !ok {
		return
	}
	if ct := q.header("content-type"); ct != "" && !isJSONContentType(ct) {
		if cfg.Server.Content.NonJSON == "reject" {
			r.reject(d, 415, openai.TypeInvalidRequest, "unsupported_media_type",
				"content-type "+strconv.Quote(truncate(ct, 64))+" is not JSON")
			return
		}
		r.route(d, cfg.Routing.DefaultTarget, "unparsed", OutcomePassthrough)
		return
	}
	shape := openai.ShapeOf(q.Path)
	req := &d.parsed
	err := req.Reset(body, shape, cfg.Server.Limits.MaxJSONDepth)
	d.Durations.Parse = time.Since(start)
	if err != nil {
		if errors.Is(err, openai.ErrTooDeep) {
			r.reject(d, 400, openai.TypeInvalidRequest, "json_too_deep",
				"request body nests JSON deeper than "+strconv.Itoa(cfg.Server.Limits.MaxJSONDepth)+" levels")
			return
		}
		if cfg.Server.StrictJSON || errors.Is(err, openai.ErrBadModel) || errors.Is(err, openai.ErrBadMessage) {
			r.reject(d, 400, openai.TypeInvalidRequest, "invalid_json", err.Error())
			return
		}
		r.route(d, cfg.Routing.DefaultTarget, "unparsed", OutcomePassthrough)
		return
	}
	d.Shape, d.Stream, d.IncludeUsage = shape, req.Stream, req.IncludeUsage
	d.ResponseJSON = req.ResponseFormat == "json_object" || req.ResponseFormat == "json_schema"
	if req.MessageCount > cfg.Server.Limits.MaxMessages {
		r.reject(d, 400, openai.TypeInvalidRequest, "too_many_messages",
			strconv.Itoa(req.MessageCount)+" messages; the limit is "+strconv.Itoa(cfg.Server.Limits.MaxMessages))
		return
	}
	fillRequestFromBody(&d.Request, req)

	pinned, ok := r.snap.ResolveModel(req.Model)
	if !ok {
		r.reject(d, 404, openai.TypeInvalidRequest, "model_not_found",
			"the model "+strconv.Quote(truncate(req.Model, 128))+" does not exist or is not served by this gateway")
		return
	}

	t0 := time.Now()
	if err := r.signals.Compute(ctx, req, &d.Signals); err != nil {
		// Signals are best effort: a failed signal never blocks routing, the
		// policy sees what was computed.
		r.log.Warn("signals failed", zap.String("decision_id", d.ID), zap.Error(err))
	}
	d.Durations.Signals = time.Since(t0)
	d.Request.PromptChars = d.Signals.PromptChars
	d.Request.EstTokens = d.Signals.EstTokens

	d.Proposal = r.propose(pinned, &d.Signals)
	r.applyPolicy(ctx, d)
}

// propose runs the routing table: a pinned target, else keyword rules with a
// target, then the intent table, then complexity bands, then the default.
func (r *Router) propose(pinned string, s *signals.Signals) policy.Proposal {
	rt := r.snap.Config.Routing
	target, reason := "", ""
	switch {
	case pinned != config.AutoModel:
		target, reason = pinned, "model"
	default:
		// KeywordRules is sorted: the first matching rule with a target wins.
		for _, rule := range s.KeywordRules {
			if t, ok := r.keywordTargets[rule]; ok {
				target, reason = t, "keyword:"+rule
				break
			}
		}
		if target == "" && s.Intent != "" && s.Intent != signals.UnknownIntent {
			if t, ok := rt.Intents[s.Intent]; ok {
				target, reason = t, intentReason(s.Intent)
			}
		}
		if target == "" {
			for _, b := range rt.Complexity {
				if s.Complexity > b.Above {
					target, reason = b.Target, "complexity"
					break
				}
			}
		}
		if target == "" {
			target, reason = rt.DefaultTarget, "default"
		}
	}
	p := policy.Proposal{Target: target, Reason: reason}
	if t, ok := r.snap.Target(target); ok {
		p.Tier = t.Tier
	}
	return p
}

func (r *Router) applyPolicy(ctx context.Context, d *Decision) {
	t0 := time.Now()
	in := &d.input
	*in = policy.Input{Request: d.Request, Signals: &d.Signals, Proposal: d.Proposal}
	dec, err := r.policy.Eval(ctx, in)
	d.Durations.Policy = time.Since(t0)
	d.PolicyRevision = r.policy.Revision()
	if err == nil && dec.Allow {
		if _, ok := r.snap.Target(dec.Target); !ok {
			err = errUnknownTarget{dec.Target}
		}
	}
	if err != nil {
		kind := policyErrKind(err)
		d.PolicyErr = err
		r.metrics.PolicyErrors.WithLabelValues(kind).Inc()
		r.log.Error("policy failed", zap.String("decision_id", d.ID), zap.String("kind", kind),
			zap.String("failure_mode", r.snap.Config.Server.FailureMode), zap.Error(err))
		if r.failOpen {
			r.route(d, d.Proposal.Target, d.Proposal.Reason, OutcomeRouted)
			d.Reason = "policy_" + kind + ":" + d.Proposal.Reason
			return
		}
		d.Outcome = OutcomeError
		d.Status, d.ErrType, d.Code = 503, openai.TypeServer, "policy_unavailable"
		d.Message = "the routing policy could not decide on this request; try again later"
		d.Reason = "policy_" + kind
		return
	}
	d.Headers = filterPolicyHeaders(dec.Headers)
	if !dec.Allow {
		d.Outcome = OutcomeDenied
		d.Status, d.ErrType, d.Code = dec.Status, openai.TypePermission, "policy_denied"
		if d.Status == 0 {
			d.Status = 403
		}
		if d.Status >= 400 && d.Status < 500 && d.Status != 403 {
			d.ErrType = openai.TypeInvalidRequest
		}
		d.Reason = dec.Reason
		if d.Reason == "" {
			d.Reason = "denied"
		}
		d.Code = d.Reason
		d.Message = dec.Message
		if d.Message == "" {
			d.Message = "this request is not allowed by policy (" + d.Reason + ")"
		}
		return
	}
	reason := dec.Reason
	if reason == "" {
		reason = d.Proposal.Reason
	}
	r.route(d, dec.Target, reason, OutcomeRouted)
}

type errUnknownTarget struct{ name string }

func (e errUnknownTarget) Error() string {
	return "policy chose target " + strconv.Quote(e.name) + ", which is not defined in the config"
}

func policyErrKind(err error) string {
	var ut errUnknownTarget
	switch {
	case errors.As(err, &ut):
		return "unknown_target"
	case errors.Is(err, policy.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, policy.ErrUndefined):
		return "undefined"
	case errors.Is(err, policy.ErrInvalidDecision):
		return "invalid"
	}
	return "error"
}

func (r *Router) route(d *Decision, target, reason, outcome string) {
	d.Outcome, d.Target, d.Reason = outcome, target, reason
	if t, ok := r.snap.Target(target); ok {
		d.Tier = t.Tier
		if len(t.Models) > 0 {
			d.Model = t.Models[0].Name
		}
	}
}

func (r *Router) reject(d *Decision, status int, typ, code, msg string) {
	d.Outcome, d.Status, d.ErrType, d.Code, d.Message, d.Reason = OutcomeRejected, status, typ, code, msg, code
}

func (r *Router) record(d *Decision) {
	m := r.metrics
	m.ObservePhase(telemetry.PhaseTotal, d.Durations.Total)
	if d.Durations.Parse > 0 {
		m.ObservePhase(telemetry.PhaseParse, d.Durations.Parse)
	}
	if d.Durations.Signals > 0 {
		m.ObservePhase(telemetry.PhaseSignals, d.Durations.Signals)
		m.Classified(d.Signals.Classifier)
	}
	if d.Durations.Policy > 0 {
		m.ObservePhase(telemetry.PhasePolicy, d.Durations.Policy)
	}
	if d.Outcome == OutcomeRejected {
		m.Rejections.WithLabelValues(d.Code).Inc()
	}
	m.CountRequest(telemetry.RequestKey{Target: d.Target, Tier: d.Tier, Model: d.Model, Outcome: d.Outcome, Reason: d.Reason}, r.requestLabels)
}

// requestLabels are the switchyard_requests_total label values of k.
func (r *Router) requestLabels(k telemetry.RequestKey) [5]string {
	return [5]string{labelOr(k.Target), labelOr(k.Tier), labelOr(k.Model), k.Outcome, r.metrics.Reason(reasonLabel(k.Reason))}
}

// reasonLabel keeps the reason's kind ("intent", "keyword") and drops the
// detail after ':' except for intents, which are a fixed set.
func reasonLabel(r string) string {
	if i := strings.IndexByte(r, ':'); i >= 0 && !strings.HasPrefix(r, "intent:") {
		return r[:i]
	}
	if l, ok := intentLabels[r]; ok {
		return l
	}
	return strings.ReplaceAll(r, ":", "_")
}

// intentReasons and intentLabels are "intent:<name>" and its metric label
// "intent_<name>" for every intent, built once: the request path would
// otherwise build both strings per request.
var intentReasons, intentLabels = func() (map[string]string, map[string]string) {
	reasons, labels := map[string]string{}, map[string]string{}
	for _, in := range config.Intents {
		reasons[in] = "intent:" + in
		labels["intent:"+in] = "intent_" + in
	}
	return reasons, labels
}()

func intentReason(intent string) string {
	if r, ok := intentReasons[intent]; ok {
		return r
	}
	return "intent:" + intent
}

func labelOr(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// requestInput fills in (whose Headers map, if any, is empty) with the
// request line, the tenant and, when anything reads them, the headers a
// policy may see.
func (r *Router) requestInput(q *Request, in *policy.Request) {
	in.Method, in.Path = q.Method, q.Path
	if !r.headers {
		if r.tenantHeader != "" && !r.secrets.secret(r.tenantHeader) {
			in.Tenant = joinedHeader(q, r.tenantHeader)
		}
		return
	}
	if in.Headers == nil {
		in.Headers = make(map[string]string, len(q.Headers))
	}
	for _, h := range q.Headers {
		if h.Key == "" || h.Key[0] == ':' {
			continue
		}
		if r.secrets.secret(h.Key) {
			continue
		}
		if _, dup := in.Headers[h.Key]; dup {
			in.Headers[h.Key] += "," + h.Value
			continue
		}
		in.Headers[h.Key] = h.Value
	}
	if r.tenantHeader != "" {
		in.Tenant = in.Headers[r.tenantHeader]
	}
}

// joinedHeader is the value of header key as the header map has it:
// repeated values joined with ",".
func joinedHeader(q *Request, key string) string {
	v, n := "", 0
	for _, h := range q.Headers {
		if h.Key == key {
			if n == 0 {
				v = h.Value
			} else {
				v += "," + h.Value
			}
			n++
		}
	}
	return v
}

func fillRequestFromBody(in *policy.Request, req *openai.Request) {
	in.Model = req.Model
	in.Stream = req.Stream
	in.MaxTokens = req.MaxTokens
	in.ResponseFormat = req.ResponseFormat
	in.HasTools = req.HasTools
	in.MessageCount = req.MessageCount
}

// filterPolicyHeaders keeps the headers a policy may add: lower-case
// x-switchyard-* names other than the ones Switchyard sets itself.
func filterPolicyHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		k = strings.ToLower(k)
		switch k {
		case HeaderTarget, HeaderDecision, HeaderReason, HeaderTier:
			continue
		}
		if strings.HasPrefix(k, "x-switchyard-") && validHeaderValue(v) {
			out[k] = v
		}
	}
	return out
}

// Headers Switchyard sets.
const (
	HeaderTarget    = "x-switchyard-target"
	HeaderDecision  = "x-switchyard-decision"
	HeaderReason    = "x-switchyard-reason"
	HeaderTier      = "x-switchyard-tier"
	HeaderModel     = "x-switchyard-model"
	HeaderEscalated = "x-switchyard-escalated"
	HeaderCost      = "x-switchyard-cost-usd"
	HeaderPrefix    = "x-switchyard-"
)

func validHeaderValue(v string) bool {
	if len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func isJSONContentType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	return ct == "application/json" || strings.HasSuffix(ct, "+json") || ct == "text/json"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Explainer is a policy that can say which rules produced a decision
// (*policy.Engine does).
type Explainer interface {
	Explain(ctx context.Context, in *policy.Input) (policy.Decision, []string, error)
}

// Explain re-evaluates the policy for a decision with tracing on and returns
// the rules that fired. It is for `switchyard explain`, never the hot path.
func (r *Router) Explain(ctx context.Context, d *Decision) ([]string, error) {
	ex, ok := r.policy.(Explainer)
	if !ok {
		return nil, errors.New("this policy engine cannot explain decisions")
	}
	_, lines, err := ex.Explain(ctx, &policy.Input{Request: d.Request, Signals: &d.Signals, Proposal: d.Proposal})
	return lines, err
}
