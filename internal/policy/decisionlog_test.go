package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

const (
	secretBearer = "Bearer sk-live-0123456789abcdefSECRET"
	secretCustom = "custom-secret-value-42"
	secretCookie = "session=cookie-secret-99"
)

func logRecord() *DecisionLog {
	sig := &signals.Signals{Intent: "code", Complexity: 0.7, Keywords: []string{"confidential"},
		PII: []pii.Finding{{Type: pii.CreditCard, Count: 2}}, Classifier: signals.SourceEmbedded}
	sig.Injection.Score = 0.1
	return &DecisionLog{
		ID: "req-1", Tenant: "acme", Target: "onprem", Reason: "pii_to_onprem", Allow: true,
		PolicyRevision: "abcdef012345", EvalDuration: 42 * time.Microsecond,
		Proposal: &Proposal{Target: "reasoning", Tier: "reasoning", Reason: "intent:code"},
		Signals:  sig,
		Headers: map[string]string{
			"authorization": secretBearer, "Cookie": secretCookie, "x-internal-key": secretCustom,
			"x-goog-api-key": secretCustom, "content-type": "application/json", "x-tenant-id": "acme",
		},
	}
}

func TestDecisionLog(t *testing.T) {
	for _, debug := range []bool{false, true} {
		name := map[bool]string{false: "redacted", true: "debug_unredacted"}[debug]
		t.Run(name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			dl := NewDecisionLogger(zap.New(core), config.Policy{
				DecisionLog: true, DebugUnredacted: debug, SecretHeaders: []string{"x-internal-key"},
			})
			dl.Log(logRecord())
			entries := logs.AllUntimed()
			if len(entries) != 1 || entries[0].Message != DecisionLogMessage {
				t.Fatalf("entries: %+v", entries)
			}
			fields := entries[0].ContextMap()
			for k, want := range map[string]any{
				"decision_id": "req-1", "tenant": "acme", "target": "onprem", "reason": "pii_to_onprem",
				"allow": true, "status": int64(0), "policy_revision": "abcdef012345", "eval_duration": 42 * time.Microsecond,
			} {
				if fields[k] != want {
					t.Errorf("%s = %#v, want %#v", k, fields[k], want)
				}
			}
			// Render the entry as JSON, as production does, and look for secrets.
			enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
			buf, err := enc.EncodeEntry(entries[0].Entry, entries[0].Context)
			if err != nil {
				t.Fatal(err)
			}
			line := buf.String()
			for _, secret := range []string{secretBearer, "sk-live", secretCustom, secretCookie} {
				if strings.Contains(line, secret) {
					t.Errorf("secret %q in log line: %s", secret, line)
				}
			}
			_, hasProposal := fields["proposal"]
			_, hasHeaders := fields["headers"]
			if hasProposal != debug || hasHeaders != debug {
				t.Errorf("debug=%v but proposal=%v headers=%v: %s", debug, hasProposal, hasHeaders, line)
			}
			if debug && (!strings.Contains(line, `"content-type":"application/json"`) || !strings.Contains(line, `"credit_card":2`)) {
				t.Errorf("debug fields missing: %s", line)
			}
		})
	}
}

func TestDecisionLogOff(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	dl := NewDecisionLogger(zap.New(core), config.Policy{DecisionLog: false})
	dl.Log(logRecord())
	var nilLogger *DecisionLogger
	nilLogger.Log(logRecord())
	if logs.Len() != 0 {
		t.Fatalf("logged %d entries with decision_log off", logs.Len())
	}
}

func TestDecisionLogError(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	dl := NewDecisionLogger(zap.New(core), config.Policy{DecisionLog: true})
	rec := logRecord()
	rec.Err = errors.New("policy: evaluation timed out")
	dl.Log(rec)
	if got := logs.AllUntimed()[0].ContextMap()["policy_error"]; got != "policy: evaluation timed out" {
		t.Fatalf("policy_error = %v", got)
	}
}
