package policy

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

func compilerFor(t *testing.T, src string) *ast.Compiler {
	t.Helper()
	c := ast.NewCompiler()
	c.Compile(map[string]*ast.Module{"p.rego": ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})})
	if c.Failed() {
		t.Fatal(c.Errors)
	}
	return c
}

func TestInputFieldsRead(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want uint64
	}{
		{"one leaf", `package p
x if input.request.tenant == "a"`, 1<<fReqTenant | 1<<fPropTarget},
		{"injection score", `package p
x if input.signals.injection.score > 0.5`, 1<<fSigInjectionScore | 1<<fPropTarget},
		{"whole section", `package p
x := input.proposal`, 1<<fPropTarget | 1<<fPropTier | 1<<fPropReason},
		{"variable key", `package p
x if { some k; input.request[k] == "a" }`, sectionMask("request") | 1<<fPropTarget},
		{"bare input", `package p
x := input`, allFields},
		{"function of input", `package p
f(v) := v
x := f(input)`, allFields},
		{"targets and version are per engine", `package p
x if { input.targets.fast; input.version == 1 }`, 1 << fPropTarget},
		{"unknown key reads the section", `package p
x := input.signals.nope`, sectionMask("signals") | 1<<fPropTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inputFieldsRead(compilerFor(t, tt.src)); got != tt.want {
				t.Errorf("mask = %b, want %b", got, tt.want)
			}
		})
	}
}

func TestNondeterministicPolicyIsNotCached(t *testing.T) {
	if deterministic(compilerFor(t, "package p\nx := time.now_ns()")) {
		t.Error("time.now_ns() treated as deterministic")
	}
	if !deterministic(compilerFor(t, `package p
x if input.request.tenant == "a"`)) {
		t.Error("a plain rule treated as non-deterministic")
	}
	fsys := fstest.MapFS{"now.rego": {Data: []byte(`package switchyard
decision := {"allow": true, "target": input.proposal.target, "reason": sprintf("%d", [time.now_ns()])}`)}}
	e := newTestEngine(t, nil, fsys)
	if e.Cached() {
		t.Fatal("engine caches a policy that reads the clock")
	}
	a, _ := e.Eval(context.Background(), realisticInput())
	b, _ := e.Eval(context.Background(), realisticInput())
	if a.Reason == b.Reason {
		t.Error("two evaluations of a clock-reading policy returned the same reason")
	}
}

// The shipped policies do not read the prompt's size, confidence or
// complexity: inputs differing only there share a decision; inputs
// differing in what the policy reads do not.
func TestShippedPolicyCacheKey(t *testing.T) {
	var hits, misses int
	e, err := New(context.Background(), testSnapshot(t, nil), Options{OnCache: func(hit bool) {
		if hit {
			hits++
		} else {
			misses++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Cached() {
		t.Fatal("shipped policies not cached")
	}
	m := e.memo.mask
	for _, f := range []int{fSigComplexity, fSigIntentConfidence, fReqPromptChars, fSigPromptChars, fReqHeaders} {
		if m&(1<<f) != 0 {
			t.Errorf("shipped policy key covers field %d, which it should not read", f)
		}
	}
	ctx := context.Background()
	in := realisticInput()
	d1, _ := e.Eval(ctx, in)
	in.Signals.Complexity, in.Signals.IntentConfidence, in.Request.PromptChars = 0.99, 0.11, 9
	d2, _ := e.Eval(ctx, in)
	if hits != 1 || misses != 1 || !reflect.DeepEqual(d1, d2) {
		t.Errorf("hits=%d misses=%d %+v %+v", hits, misses, d1, d2)
	}
	in.Signals.PII = append(in.Signals.PII, pii.Finding{Type: pii.CreditCard, Count: 1})
	d3, _ := e.Eval(ctx, in)
	if misses != 2 || d3.Target != "onprem" {
		t.Errorf("a PII finding reused the old decision: %+v (misses %d)", d3, misses)
	}
}

// TestCacheAgreesWithEvaluation evaluates many random inputs with the cache
// on and off: every decision must be identical.
func TestCacheAgreesWithEvaluation(t *testing.T) {
	data := func(c *config.Config) {
		c.Policy.Data["tenants"] = map[string]any{"acme": map[string]any{"allowed_targets": []any{"fast", "onprem"}}}
		c.Policy.Data["max_tokens"] = map[string]any{"fast": 1000, "reasoning": 4000, "specialist": 2000}
	}
	cached := newTestEngine(t, data, nil)
	plain := newTestEngine(t, func(c *config.Config) { data(c); c.Policy.DecisionCacheSize = -1 }, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	ctx := context.Background()
	for i := 0; i < 3000; i++ {
		sig := &signals.Signals{Intent: pick("code", "qa", "legal"), Complexity: rng.Float64(), Classifier: "embedded"}
		for _, ty := range []string{pii.CreditCard, pii.Email, pii.APIKey, pii.IBAN} {
			if rng.IntN(6) == 0 {
				sig.PII = append(sig.PII, pii.Finding{Type: ty, Count: 1 + rng.IntN(2)})
			}
		}
		sig.Injection.Score = float64(rng.IntN(11)) / 10
		tgt := pick("fast", "reasoning", "onprem", "cascade", "guarded")
		in := &Input{
			Request:  Request{Tenant: pick("", "acme", "other"), MaxTokens: int64(pick2(rng, 0, 500, 1500, 5000)), Model: "auto"},
			Signals:  sig,
			Proposal: Proposal{Target: tgt, Tier: "fast", Reason: "default"},
		}
		a, errA := cached.Eval(ctx, in)
		b, errB := plain.Eval(ctx, in)
		if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
			t.Fatalf("input %d: cached %+v %v, evaluated %+v %v", i, a, errA, b, errB)
		}
	}
}

func pick2(rng *rand.Rand, xs ...int) int { return xs[rng.IntN(len(xs))] }
