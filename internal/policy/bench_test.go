package policy

import (
	"context"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/benchcpu"
	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// realisticInput is a typical chat request: a dozen headers, an intent, a
// keyword, an e-mail address in the prompt and a low injection score.
func realisticInput() *Input {
	sig := &signals.Signals{
		Intent: "code", IntentConfidence: 0.82, Complexity: 0.64,
		Keywords:   []string{"confidential"},
		PII:        []pii.Finding{{Type: pii.Email, Count: 1}},
		Classifier: signals.SourceEmbedded, PromptChars: 1843, EstTokens: 512,
	}
	sig.Injection.Score = 0.12
	return &Input{
		Request: Request{
			Method: "POST", Path: "/v1/chat/completions",
			Headers: map[string]string{
				"content-type": "application/json", "accept": "application/json",
				"user-agent": "OpenAI/Python 1.54.0", "x-tenant-id": "acme",
				"x-request-id": "2f1c9a4e-7d3b-4c1e-9f0a-5b6c7d8e9f01", "content-length": "2311",
				"x-stainless-lang": "python", "x-stainless-os": "Linux", "accept-encoding": "gzip, deflate",
				"x-forwarded-for": "10.0.3.17", "x-envoy-expected-rq-timeout-ms": "60000", "host": "llm.internal",
			},
			Tenant: "acme", Model: "auto", MaxTokens: 1024, HasTools: true,
			MessageCount: 4, PromptChars: 1843, EstTokens: 512,
		},
		Signals:  sig,
		Proposal: Proposal{Target: "reasoning", Tier: "reasoning", Reason: "intent:code"},
	}
}

// BenchmarkPolicyEval measures Engine.Eval with the shipped policies and the
// shipped default config: the common case (nothing applies), a PII reroute,
// a denial, and a config with tenants and max_tokens caps where the tenant
// rule reroutes; "eval" with the decision cache off (a full Rego evaluation
// per call), "cached" with it on (the same input: every call a hit). cpu-ns/op (Linux) is the evaluating thread's CPU time,
// which a busy machine inflates less than ns/op.
func BenchmarkPolicyEval(b *testing.B) {
	tenants := func(c *config.Config) {
		c.Policy.Data["tenants"] = map[string]any{"acme": map[string]any{"allowed_targets": []any{"fast", "cascade"}}}
		c.Policy.Data["max_tokens"] = map[string]any{"fast": 8192, "reasoning": 32768, "specialist": 4096}
	}
	withPII := func(in *Input) { in.Signals.PII = append(in.Signals.PII, pii.Finding{Type: pii.CreditCard, Count: 1}) }
	withKey := func(in *Input) { in.Signals.PII = append(in.Signals.PII, pii.Finding{Type: pii.APIKey, Count: 1}) }
	cases := []struct {
		name   string
		cfg    func(*config.Config)
		input  func(*Input)
		target string
		allow  bool
	}{
		{"passthrough", nil, nil, "reasoning", true},
		{"pii_to_onprem", nil, withPII, "onprem", true},
		{"deny_secret", nil, withKey, "", false},
		{"tenant_reroute", tenants, nil, "fast", true},
	}
	for _, mode := range []string{"eval", "cached"} {
		for _, tc := range cases {
			b.Run(mode+"/"+tc.name, func(b *testing.B) {
				e := newTestEngine(b, func(c *config.Config) {
					if tc.cfg != nil {
						tc.cfg(c)
					}
					if mode == "eval" {
						c.Policy.DecisionCacheSize = -1 // every iteration evaluates the Rego
					}
				}, nil)
				in := realisticInput()
				if tc.input != nil {
					tc.input(in)
				}
				ctx := context.Background()
				d, err := e.Eval(ctx, in)
				if err != nil || d.Allow != tc.allow || d.Target != tc.target {
					b.Fatalf("unexpected decision %+v, %v", d, err)
				}
				b.ReportAllocs()
				cpu := benchcpu.Start()
				n := 0
				for b.Loop() {
					n++
					if _, err := e.Eval(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				cpu.Report(b, n)
			})
		}
	}
}

// BenchmarkInputValue is the part of Eval that builds the input document.
func BenchmarkInputValue(b *testing.B) {
	e := newTestEngine(b, nil, nil)
	in := realisticInput()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.inputValue(in)
	}
}
