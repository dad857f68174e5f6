package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every Prometheus collector Switchyard exports. Label values
// come from config (targets, tiers, models) or from small fixed sets; free
// text such as policy reasons goes through a Bounded set so cardinality
// stays bounded whatever a policy returns. See README "Metrics".
type Metrics struct {
	Registry *prometheus.Registry

	Requests         *prometheus.CounterVec   // target, tier, model, outcome, reason
	DecisionDuration *prometheus.HistogramVec // phase
	ClassifierSource *prometheus.CounterVec   // source
	CacheLookups     *prometheus.CounterVec   // result
	MessageCache     *prometheus.CounterVec   // result
	PolicyErrors     *prometheus.CounterVec   // kind
	PolicyCache      *prometheus.CounterVec   // result
	Rejections       *prometheus.CounterVec   // code
	Reloads          *prometheus.CounterVec   // kind, result
	StreamsActive    prometheus.Gauge
	Streams          *prometheus.CounterVec // role, result
	Panics           prometheus.Counter
	Tokens           *prometheus.CounterVec // direction, model, estimated
	GenAITokens      *prometheus.HistogramVec
	CostUSD          *prometheus.CounterVec // model, target
	BaselineCostUSD  *prometheus.CounterVec // target
	Escalations      *prometheus.CounterVec // target, reason
	UpstreamStatus   *prometheus.CounterVec // target, model, class
	UpstreamRewrites *prometheus.CounterVec // model, result
	LLMClassifier    *prometheus.CounterVec // result
	BreakerOpen      prometheus.Gauge

	reasons *Bounded
	// Series resolved once: label lookups hash every value on every call,
	// and these are hit several times per request.
	phases  map[string]prometheus.Observer
	streams map[[2]string]prometheus.Counter
	sources map[string]prometheus.Counter
	// requests maps a decision's raw (target, tier, model, outcome,
	// reason) to its switchyard_requests_total series: a copy-on-write map,
	// read without a lock, of at most maxRequestSeries entries.
	requests   atomic.Pointer[map[RequestKey]prometheus.Counter]
	requestsMu sync.Mutex
}

// RequestKey is one decision's switchyard_requests_total series before its
// label values are cleaned up (empty values, bounded reasons).
type RequestKey struct{ Target, Tier, Model, Outcome, Reason string }

// maxRequestSeries bounds the remembered series; beyond it (a policy
// returning ever-new reasons) series are resolved per request as before.
const maxRequestSeries = 1024

// Phases of a routing decision, the "phase" label of
// switchyard_decision_duration_seconds.
const (
	PhaseParse   = "parse"
	PhaseSignals = "signals"
	PhasePolicy  = "policy"
	PhaseTotal   = "total"
)

// NewMetrics registers all collectors on a fresh registry, with the Go and
// process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r, reasons: NewBounded(64)}
	// Sub-millisecond buckets: the decision path is measured in microseconds.
	latency := []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5}
	m.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_requests_total",
		Help: "Routing decisions by chosen target, tier, first model, outcome (routed, denied, rejected, error, passthrough) and reason.",
	}, []string{"target", "tier", "model", "outcome", "reason"})
	m.DecisionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchyard_decision_duration_seconds", Help: "Time spent deciding a route, per phase (parse, signals, policy, total).",
		Buckets: latency,
	}, []string{"phase"})
	m.ClassifierSource = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_classifier_requests_total", Help: "Intent classifications by source (embedded, llm, cache).",
	}, []string{"source"})
	m.CacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_classifier_cache_lookups_total", Help: "Classifier cache lookups by result (hit, miss).",
	}, []string{"result"})
	m.MessageCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_signal_message_cache_lookups_total", Help: "Per-message scan cache lookups (complexity, PII, injection) by result (hit, miss).",
	}, []string{"result"})
	m.PolicyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_policy_errors_total", Help: "Policy evaluations that produced no usable decision, by kind (error, timeout, undefined, invalid, unknown_target).",
	}, []string{"kind"})
	m.PolicyCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_policy_cache_lookups_total", Help: "Policy decision cache lookups by result (hit, miss).",
	}, []string{"result"})
	m.Rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_rejected_requests_total", Help: "Requests answered with an error before routing, by error code.",
	}, []string{"code"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_config_reload_total", Help: "Config and policy reloads by kind (config, policy) and result (success, error).",
	}, []string{"kind", "result"})
	m.StreamsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchyard_streams_active", Help: "ext_proc streams currently open.",
	})
	m.Streams = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_streams_total", Help: "ext_proc streams by role (router, upstream) and how they ended (ok, canceled, error).",
	}, []string{"role", "result"})
	m.Panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_panics_recovered_total", Help: "Panics recovered at the stream boundary.",
	})
	m.Tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_tokens_total", Help: "Tokens by direction (input, output), model, and whether they were estimated (true, false).",
	}, []string{"direction", "model", "estimated"})
	m.GenAITokens = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gen_ai_client_token_usage",
		Help:    "OpenTelemetry GenAI semantic-convention token usage per request (gen_ai.client.token.usage).",
		Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304},
	}, []string{"gen_ai_token_type", "gen_ai_request_model", "gen_ai_system"})
	m.CostUSD = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_cost_usd_total", Help: "Cost of served requests in USD from the price table, by model and target.",
	}, []string{"model", "target"})
	m.BaselineCostUSD = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_baseline_cost_usd_total", Help: "What the same tokens would have cost on the baseline model, by target. Savings = 1 - cost/baseline.",
	}, []string{"target"})
	m.Escalations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_escalations_total", Help: "Cascade escalations by target and judge reason.",
	}, []string{"target", "reason"})
	m.UpstreamStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_upstream_responses_total", Help: "Upstream responses seen by the upstream role, by target, model and status class (2xx, 4xx, 5xx).",
	}, []string{"target", "model", "class"})
	m.UpstreamRewrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_upstream_rewrites_total", Help: "Per-attempt upstream rewrites by model and result (ok, no_metadata, unknown_model, error).",
	}, []string{"model", "result"})
	m.LLMClassifier = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_llm_classifier_calls_total", Help: "LLM classifier calls by result (ok, timeout, error, invalid, breaker_open, busy).",
	}, []string{"result"})
	m.BreakerOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchyard_llm_classifier_breaker_open", Help: "1 while the LLM classifier circuit breaker is open.",
	})
	for _, c := range []prometheus.Collector{m.Requests, m.DecisionDuration, m.ClassifierSource, m.CacheLookups, m.MessageCache,
		m.PolicyErrors, m.PolicyCache, m.Rejections, m.Reloads, m.StreamsActive, m.Streams, m.Panics, m.Tokens, m.GenAITokens,
		m.CostUSD, m.BaselineCostUSD, m.Escalations, m.UpstreamStatus, m.UpstreamRewrites, m.LLMClassifier, m.BreakerOpen} {
		f(c)
	}
	m.phases = make(map[string]prometheus.Observer, 4)
	for _, p := range []string{PhaseParse, PhaseSignals, PhasePolicy, PhaseTotal} {
		m.phases[p] = m.DecisionDuration.WithLabelValues(p)
	}
	m.sources = make(map[string]prometheus.Counter, 3)
	for _, src := range []string{"embedded", "llm", "cache"} {
		m.sources[src] = m.ClassifierSource.WithLabelValues(src)
	}
	m.streams = make(map[[2]string]prometheus.Counter, 6)
	for _, role := range []string{"router", "upstream"} {
		for _, result := range []string{"ok", "canceled", "error"} {
			m.streams[[2]string{role, result}] = m.Streams.WithLabelValues(role, result)
		}
	}
	return m
}

// StreamEnded counts one ext_proc stream by role and how it ended.
func (m *Metrics) StreamEnded(role, result string) {
	if c, ok := m.streams[[2]string{role, result}]; ok {
		c.Inc()
		return
	}
	m.Streams.WithLabelValues(role, result).Inc()
}

// Classified counts one intent classification by source.
func (m *Metrics) Classified(source string) {
	if c, ok := m.sources[source]; ok {
		c.Inc()
		return
	}
	m.ClassifierSource.WithLabelValues(source).Inc()
}

// CountRequest counts one decision in switchyard_requests_total. labels
// turns k into the series' label values; it runs once per distinct k.
// Why: resolving the series hashes five label values and takes the
// vector's lock, ~1 µs per request under load (route.Router.record in a
// 2 KB closed-loop profile); a decision's key is one of a few dozen.
func (m *Metrics) CountRequest(k RequestKey, labels func(RequestKey) [5]string) {
	if p := m.requests.Load(); p != nil {
		if c, ok := (*p)[k]; ok {
			c.Inc()
			return
		}
	}
	l := labels(k)
	c := m.Requests.WithLabelValues(l[0], l[1], l[2], l[3], l[4])
	c.Inc()
	m.requestsMu.Lock()
	defer m.requestsMu.Unlock()
	var next map[RequestKey]prometheus.Counter
	if old := m.requests.Load(); old != nil {
		if len(*old) >= maxRequestSeries {
			return
		}
		next = maps.Clone(*old)
	} else {
		next = make(map[RequestKey]prometheus.Counter, 1)
	}
	next[k] = c
	m.requests.Store(&next)
}

// Reason bounds a free-text reason for use as a label value.
func (m *Metrics) Reason(r string) string { return m.reasons.Value(r) }

// ObservePhase records one phase duration.
func (m *Metrics) ObservePhase(phase string, d time.Duration) {
	if o, ok := m.phases[phase]; ok {
		o.Observe(d.Seconds())
		return
	}
	m.DecisionDuration.WithLabelValues(phase).Observe(d.Seconds())
}

// Bounded admits at most N distinct label values; later new values become
// "other". Values that are not short lower-case identifiers are "other" too.
type Bounded struct {
	mu   sync.RWMutex
	max  int
	seen map[string]struct{}
}

// NewBounded returns a set admitting n distinct values.
func NewBounded(n int) *Bounded { return &Bounded{max: n, seen: make(map[string]struct{}, n)} }

// Value returns v if admitted, else "other".
func (b *Bounded) Value(v string) string {
	if v == "" {
		return "none"
	}
	if !labelSafe(v) {
		return "other"
	}
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[v] = struct{}{}
	return v
}

func labelSafe(v string) bool {
	if len(v) > 48 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
