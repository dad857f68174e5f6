package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// FuzzEval feeds request-derived fields (all outside input) to the shipped
// policies: Eval must return a valid decision or one of the documented
// errors, never panic.
func FuzzEval(f *testing.F) {
	e := newTestEngine(f, nil, nil)
	f.Add("acme", "auto", "fast", "default", "credit_card", int64(0), 0.1, "x-team", "blue")
	f.Add("", "gpt-4o-mini", "reasoning", "intent:code", "api_key", int64(1<<40), 0.99, "", "")
	f.Add("\x00", "\xff", "nowhere", "", "", int64(-5), -1.0, "Authorization", "Bearer x")
	f.Fuzz(func(t *testing.T, tenant, model, target, reason, piiType string, maxTokens int64, score float64, hk, hv string) {
		in := &Input{
			Request: Request{Method: "POST", Path: "/v1/chat/completions", Tenant: tenant, Model: model,
				MaxTokens: maxTokens, Headers: map[string]string{hk: hv}},
			Signals:  &signals.Signals{PII: []pii.Finding{{Type: piiType, Count: 1}}},
			Proposal: Proposal{Target: target, Reason: reason},
		}
		in.Signals.Injection.Score = score
		d, err := e.Eval(context.Background(), in)
		if err != nil {
			if !errors.Is(err, ErrUndefined) && !errors.Is(err, ErrInvalidDecision) && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrEval) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if d.Allow {
			if _, ok := e.known[d.Target]; !ok {
				t.Fatalf("allowed to unknown target %q", d.Target)
			}
		} else if d.Status < 100 || d.Status > 599 {
			t.Fatalf("denied with status %d", d.Status)
		}
	})
}

// FuzzDecodeDecision: any JSON a policy could produce decodes to a valid
// decision or ErrInvalidDecision.
func FuzzDecodeDecision(f *testing.F) {
	f.Add(`{"allow": true, "target": "fast", "headers": {"x-a": "1"}}`)
	f.Add(`{"allow": false, "status": 451, "reason": "r", "message": "m"}`)
	f.Add(`{"allow": "true", "status": 1e400}`)
	f.Add(`[1, {"allow": true}]`)
	f.Add(`{"allow": false, "headers": {"X-Y": "a\r\nb"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		v, err := ast.ValueFromReader(stringsReader(doc))
		if err != nil {
			return
		}
		d, err := decodeDecision(ast.NewTerm(v))
		if err != nil {
			if !errors.Is(err, ErrInvalidDecision) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if d.Status != 0 && (d.Status < 100 || d.Status > 599) {
			t.Fatalf("status %d accepted", d.Status)
		}
		for k, v := range d.Headers {
			if !validHeaderName(k) || hasUpper(k) || !validHeaderValue(v) {
				t.Fatalf("header %q: %q accepted", k, v)
			}
		}
	})
}
