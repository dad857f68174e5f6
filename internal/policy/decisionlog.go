package policy

import (
	"sort"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// DecisionLogMessage is the message of every decision log line.
const DecisionLogMessage = "decision"

// DecisionLog is one decision log record. It holds no prompt text and no
// header values: the debug fields (Proposal, Signals, Headers) are written
// only when the logger was built with policy.debug_unredacted, and headers
// are redacted again at write time.
type DecisionLog struct {
	ID             string
	Tenant         string
	Target         string
	Reason         string
	Allow          bool
	Status         int
	PolicyRevision string
	EvalDuration   time.Duration
	// Err is the policy error, if the decision came from the failure mode.
	Err error

	// Debug-only fields.
	Proposal *Proposal
	Signals  *signals.Signals
	Headers  map[string]string
}

// DecisionLogger writes decision log lines; build one per config snapshot.
// A nil *DecisionLogger (or one built with decision_log off) logs nothing.
type DecisionLogger struct {
	log    *zap.Logger
	debug  bool
	secret []string
}

// NewDecisionLogger returns nil when p.DecisionLog is off.
func NewDecisionLogger(l *zap.Logger, p config.Policy) *DecisionLogger {
	if !p.DecisionLog || l == nil {
		return nil
	}
	return &DecisionLogger{log: l, debug: p.DebugUnredacted, secret: append([]string(nil), p.SecretHeaders...)}
}

// Debug reports whether records carry the debug fields (headers
// included). False for a nil logger.
func (dl *DecisionLogger) Debug() bool { return dl != nil && dl.debug }

// Log writes one record at info level (debug fields only in debug mode).
func (dl *DecisionLogger) Log(rec *DecisionLog) {
	if dl == nil || rec == nil {
		return
	}
	ce := dl.log.Check(zapcore.InfoLevel, DecisionLogMessage)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 13)
	fields = append(fields,
		zap.String("decision_id", rec.ID),
		zap.String("tenant", rec.Tenant),
		zap.String("target", rec.Target),
		zap.String("reason", rec.Reason),
		zap.Bool("allow", rec.Allow),
		zap.Int("status", rec.Status),
		zap.String("policy_revision", rec.PolicyRevision),
		zap.Duration("eval_duration", rec.EvalDuration),
	)
	if rec.Err != nil {
		fields = append(fields, zap.String("policy_error", rec.Err.Error()))
	}
	if dl.debug {
		if rec.Proposal != nil {
			fields = append(fields, zap.Object("proposal", proposalLog{rec.Proposal}))
		}
		if rec.Signals != nil {
			fields = append(fields, zap.Object("signals", signalsLog{rec.Signals}))
		}
		if len(rec.Headers) > 0 {
			fields = append(fields, zap.Object("headers", headersLog{rec.Headers, dl.secret}))
		}
	}
	ce.Write(fields...)
}

type proposalLog struct{ p *Proposal }

func (p proposalLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("target", p.p.Target)
	enc.AddString("tier", p.p.Tier)
	enc.AddString("reason", p.p.Reason)
	return nil
}

// signalsLog writes the signals; they hold finding types and counts, never
// matched text.
type signalsLog struct{ s *signals.Signals }

func (s signalsLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	sig := s.s
	enc.AddString("intent", sig.Intent)
	enc.AddFloat64("intent_confidence", sig.IntentConfidence)
	enc.AddFloat64("complexity", sig.Complexity)
	_ = enc.AddArray("keywords", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
		for _, k := range sig.Keywords {
			a.AppendString(k)
		}
		return nil
	}))
	_ = enc.AddObject("pii", zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
		for _, f := range sig.PII {
			o.AddInt(f.Type, f.Count)
		}
		return nil
	}))
	enc.AddFloat64("injection_score", sig.Injection.Score)
	enc.AddString("classifier", sig.Classifier)
	enc.AddInt("est_tokens", sig.EstTokens)
	return nil
}

type headersLog struct {
	h      map[string]string
	secret []string
}

func (h headersLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	keys := make([]string, 0, len(h.h))
	for k := range h.h {
		if !IsSecretHeader(k, h.secret) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		enc.AddString(k, h.h[k])
	}
	return nil
}
