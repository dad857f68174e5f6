package route

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/signals"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// Stage names which part of a build failed, for the reload metric.
type Stage string

// Build stages.
const (
	StageConfig Stage = "config"
	StagePolicy Stage = "policy"
)

// BuildError is a failed build with the stage that failed.
type BuildError struct {
	Stage Stage
	Err   error
}

func (e *BuildError) Error() string { return e.Err.Error() }
func (e *BuildError) Unwrap() error { return e.Err }

// StageOf returns the stage of a Build or Load error.
func StageOf(err error) Stage {
	var be *BuildError
	if errors.As(err, &be) {
		return be.Stage
	}
	return StageConfig
}

// Build compiles everything a snapshot needs — the signal engine (classifier
// training, keyword and PII matchers) and the policy engine — into a Router.
func Build(ctx context.Context, snap *config.Snapshot, log *zap.Logger, m *telemetry.Metrics) (*Router, error) {
	return Rebuild(ctx, snap, log, m, nil)
}

// Rebuild is Build for a config reload: the previous router's trained
// classifier and intent cache are reused when the examples and cache size
// did not change, so a reload that only edits routing costs no retraining.
func Rebuild(ctx context.Context, snap *config.Snapshot, log *zap.Logger, m *telemetry.Metrics, prev *Router) (*Router, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = telemetry.NewMetrics()
	}
	opts := signals.Options{Logger: log, Observer: newSignalObserver(m)}
	if prev != nil {
		opts.Reuse, _ = prev.signals.(*signals.Engine)
	}
	sig, err := signals.New(snap, opts)
	if err != nil {
		return nil, &BuildError{StageConfig, fmt.Errorf("signals: %w", err)}
	}
	pol, err := policy.New(ctx, snap, policy.Options{Logger: log, OnCache: func(hit bool) {
		if hit {
			m.PolicyCache.WithLabelValues("hit").Inc()
		} else {
			m.PolicyCache.WithLabelValues("miss").Inc()
		}
	}})
	if err != nil {
		sig.Close()
		return nil, &BuildError{StagePolicy, fmt.Errorf("policy: %w", err)}
	}
	rt, err := New(snap, Deps{Signals: sig, Policy: pol, Logger: log, Metrics: m})
	if err != nil {
		sig.Close()
		return nil, &BuildError{StageConfig, err}
	}
	return rt, nil
}

// signalObserver feeds the signal engine's timings and outcomes to metrics.
// The classifier source is counted per decision by Router.record.
type signalObserver struct {
	m      *telemetry.Metrics
	phases map[string]prometheus.Observer // resolved once: no label lookup per request
	hits   prometheus.Counter
	misses prometheus.Counter
	// message cache
	msgHits, msgMisses prometheus.Counter
}

func newSignalObserver(m *telemetry.Metrics) signalObserver {
	o := signalObserver{m: m, phases: map[string]prometheus.Observer{},
		hits: m.CacheLookups.WithLabelValues("hit"), misses: m.CacheLookups.WithLabelValues("miss"),
		msgHits: m.MessageCache.WithLabelValues("hit"), msgMisses: m.MessageCache.WithLabelValues("miss")}
	for _, p := range []string{signals.PhaseExtract, signals.PhaseKeywords, signals.PhaseMessages, signals.PhaseIntent} {
		o.phases[p] = m.DecisionDuration.WithLabelValues(telemetry.PhaseSignals + "." + p)
	}
	return o
}

func (o signalObserver) Phase(phase string, d time.Duration) {
	if h, ok := o.phases[phase]; ok {
		h.Observe(d.Seconds())
	}
}

func (signalObserver) Classified(string) {}

func (o signalObserver) CacheLookup(hit bool) {
	if hit {
		o.hits.Inc()
	} else {
		o.misses.Inc()
	}
}

func (o signalObserver) MessageCacheLookups(hits, misses int) {
	if hits > 0 {
		o.msgHits.Add(float64(hits))
	}
	if misses > 0 {
		o.msgMisses.Add(float64(misses))
	}
}

func (o signalObserver) LLMCall(outcome string, _ time.Duration) {
	o.m.LLMClassifier.WithLabelValues(outcome).Inc()
	switch outcome {
	case signals.LLMBreakerOpen:
		o.m.BreakerOpen.Set(1)
	case signals.LLMOK:
		o.m.BreakerOpen.Set(0)
	}
}

// Load reads the config at path ("" = the embedded default), compiles it and
// builds a Router.
func Load(ctx context.Context, path string, log *zap.Logger, m *telemetry.Metrics) (*Router, error) {
	return Reload(ctx, path, log, m, nil)
}

// Reload is Load for a config reload (see Rebuild).
func Reload(ctx context.Context, path string, log *zap.Logger, m *telemetry.Metrics, prev *Router) (*Router, error) {
	snap, err := LoadSnapshot(path)
	if err != nil {
		return nil, err
	}
	return Rebuild(ctx, snap, log, m, prev)
}

// LoadSnapshot reads and compiles the config at path ("" = the embedded
// default) without building the signal and policy engines.
func LoadSnapshot(path string) (*config.Snapshot, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &BuildError{StageConfig, err}
	}
	src := path
	if src == "" {
		src = config.DefaultName
	}
	snap, err := config.Compile(cfg, src)
	if err != nil {
		return nil, &BuildError{StageConfig, err}
	}
	return snap, nil
}
