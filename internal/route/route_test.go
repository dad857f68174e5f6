package route

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/signals"
	"github.com/switchyard-llm/switchyard/internal/signals/injection"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// fixedSignals reports the same signals for every request, to test the
// routing table apart from the classifiers.
type fixedSignals struct{ s signals.Signals }

func (f fixedSignals) Compute(_ context.Context, _ *openai.Request, out *signals.Signals) error {
	*out = f.s
	return nil
}
func (fixedSignals) Close() {}

// scriptedPolicy returns a fixed decision or error and records its input.
type scriptedPolicy struct {
	dec policy.Decision
	err error
	in  *policy.Input
}

func (p *scriptedPolicy) Eval(_ context.Context, in *policy.Input) (policy.Decision, error) {
	p.in = in
	if p.err != nil {
		return policy.Decision{}, p.err
	}
	d := p.dec
	if d.Allow && d.Target == "" {
		d.Target = in.Proposal.Target
	}
	return d, nil
}
func (*scriptedPolicy) Revision() string { return "test" }

func testSnap(t *testing.T, mutate func(*config.Config)) *config.Snapshot {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
	}
	s, err := config.Compile(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func chat(model string) *Request {
	return &Request{Method: "POST", Path: "/v1/chat/completions",
		Headers: []Header{{"content-type", "application/json"}},
		Body:    []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"x"}]}`)}
}

func TestRoutingTableOrder(t *testing.T) {
	tests := []struct {
		name, model string
		sig         signals.Signals
		target      string
		reason      string
	}{
		{"pinned target wins over signals", "reasoning", signals.Signals{Intent: "legal", IntentConfidence: 0.9}, "reasoning", "model"},
		{"pinned upstream model id", "gpt-4o-mini", signals.Signals{Intent: "code"}, "fast", "model"},
		{"keyword rule with a target", "auto", signals.Signals{Keywords: []string{"confidential"}, KeywordRules: []string{"confidential"}, Intent: "code"}, "onprem", "keyword:confidential"},
		{"intent table", "auto", signals.Signals{Intent: "code", IntentConfidence: 0.8}, "reasoning", "intent:code"},
		{"intent not in table falls to complexity", "auto", signals.Signals{Intent: "summarize", Complexity: 0.9}, "reasoning", "complexity"},
		{"unknown intent, low complexity: default", "auto", signals.Signals{Intent: signals.UnknownIntent, Complexity: 0.2}, "fast", "default"},
		{"complexity at the threshold is not above it", "auto", signals.Signals{Complexity: 0.7}, "fast", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := &scriptedPolicy{dec: policy.Decision{Allow: true}}
			r, err := New(testSnap(t, nil), Deps{Signals: fixedSignals{tt.sig}, Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			d := r.Decide(context.Background(), chat(tt.model), "id")
			if d.Outcome != OutcomeRouted || d.Target != tt.target || d.Reason != tt.reason {
				t.Errorf("got %s %s %q, want routed %s %q", d.Outcome, d.Target, d.Reason, tt.target, tt.reason)
			}
			if pol.in.Proposal.Target != tt.target || pol.in.Proposal.Tier == "" {
				t.Errorf("policy saw proposal %+v", pol.in.Proposal)
			}
		})
	}
}

func TestPolicyOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		dec      policy.Decision
		err      error
		outcome  string
		status   int
		code     string
		target   string
		errCount string
	}{
		{"deny default status", config.FailClosed, policy.Decision{Allow: false, Reason: "secret_detected"}, nil, OutcomeDenied, 403, "secret_detected", "", ""},
		{"deny with status", config.FailClosed, policy.Decision{Allow: false, Reason: "max_tokens_exceeded", Status: 400}, nil, OutcomeDenied, 400, "max_tokens_exceeded", "", ""},
		{"policy moves target", config.FailClosed, policy.Decision{Allow: true, Target: "onprem", Reason: "pii_onprem"}, nil, OutcomeRouted, 0, "", "onprem", ""},
		{"unknown target closed", config.FailClosed, policy.Decision{Allow: true, Target: "nowhere"}, nil, OutcomeError, 503, "policy_unavailable", "", "unknown_target"},
		{"unknown target open", config.FailOpen, policy.Decision{Allow: true, Target: "nowhere"}, nil, OutcomeRouted, 0, "", "fast", "unknown_target"},
		{"undefined closed", config.FailClosed, policy.Decision{}, policy.ErrUndefined, OutcomeError, 503, "policy_unavailable", "", "undefined"},
		{"undefined open", config.FailOpen, policy.Decision{}, policy.ErrUndefined, OutcomeRouted, 0, "", "fast", "undefined"},
		{"timeout closed", config.FailClosed, policy.Decision{}, fmt.Errorf("eval: %w", policy.ErrTimeout), OutcomeError, 503, "policy_unavailable", "", "timeout"},
		{"error open", config.FailOpen, policy.Decision{}, errors.New("rego: conflict"), OutcomeRouted, 0, "", "fast", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := telemetry.NewMetrics()
			snap := testSnap(t, func(c *config.Config) { c.Server.FailureMode = tt.mode })
			r, err := New(snap, Deps{Signals: fixedSignals{signals.Signals{Complexity: 0.1}}, Policy: &scriptedPolicy{dec: tt.dec, err: tt.err}, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			d := r.Decide(context.Background(), chat("auto"), "id")
			if d.Outcome != tt.outcome || d.Status != tt.status || d.Code != tt.code || d.Target != tt.target {
				t.Errorf("got outcome=%s status=%d code=%s target=%s", d.Outcome, d.Status, d.Code, d.Target)
			}
			if tt.errCount != "" {
				if n := counter(t, m, "switchyard_policy_errors_total", tt.errCount); n != 1 {
					t.Errorf("policy error %s counted %v times", tt.errCount, n)
				}
			}
		})
	}
}

// Secrets never reach the policy input.
func TestPolicyInputRedactsSecrets(t *testing.T) {
	pol := &scriptedPolicy{dec: policy.Decision{Allow: true}}
	snap := testSnap(t, func(c *config.Config) { c.Policy.SecretHeaders = []string{"x-internal-token"} })
	r, err := New(snap, Deps{Signals: fixedSignals{}, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	q := chat("auto")
	q.Headers = append(q.Headers,
		Header{"authorization", "Bearer sk-secret"}, Header{"cookie", "s=1"}, Header{"x-api-key", "k"},
		Header{"proxy-authorization", "p"}, Header{"x-internal-token", "t"}, Header{"x-tenant-id", "acme"},
		Header{"x-goog-api-key", "g"}, Header{"x-amz-security-token", "a"},
		Header{":authority", "llm.example"})
	r.Decide(context.Background(), q, "id")
	h := pol.in.Request.Headers
	for _, k := range []string{"authorization", "cookie", "x-api-key", "proxy-authorization", "x-internal-token", ":authority", "x-goog-api-key", "x-amz-security-token"} {
		if _, ok := h[k]; ok {
			t.Errorf("header %s reached the policy input", k)
		}
	}
	if pol.in.Request.Tenant != "acme" || h["content-type"] != "application/json" {
		t.Errorf("request input = %+v", pol.in.Request)
	}
}

func TestPolicyHeadersFiltered(t *testing.T) {
	got := filterPolicyHeaders(map[string]string{
		"x-switchyard-policy": "pii", "X-Switchyard-Note": "ok", "authorization": "no",
		"x-switchyard-target": "spoof", "x-switchyard-bad": "a\nb",
	})
	if len(got) != 2 || got["x-switchyard-policy"] != "pii" || got["x-switchyard-note"] != "ok" {
		t.Errorf("filtered = %v", got)
	}
}

func TestDecompressBounded(t *testing.T) {
	if _, err := Decompress("zstd", nil, 10); !errors.Is(err, ErrUnknownEncoding) {
		t.Errorf("zstd: %v", err)
	}
	bomb := gzipOf(t, make([]byte, 1<<20)) // 1 MiB of zeros compresses to ~1 KiB
	if len(bomb) > 4096 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	if _, err := Decompress("gzip", bomb, 64<<10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("bomb: err = %v, want ErrTooLarge", err)
	}
	out, err := Decompress("gzip", bomb, 2<<20)
	if err != nil || len(out) != 1<<20 {
		t.Errorf("within limit: %d %v", len(out), err)
	}
}

func counter(t *testing.T, m *telemetry.Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetValue() == label {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A request without a body still goes through the policy.
func TestNoBodyRequestIsDecidedByPolicy(t *testing.T) {
	pol := &scriptedPolicy{dec: policy.Decision{Allow: false, Reason: "tenant_forbidden"}}
	r, err := New(testSnap(t, nil), Deps{Signals: fixedSignals{}, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Decide(context.Background(), &Request{Method: "GET", Path: "/v1/models", NoBody: true}, "id")
	if pol.in == nil || pol.in.Proposal.Reason != "no_body" || pol.in.Proposal.Target != "fast" {
		t.Fatalf("policy not consulted for a bodiless request: %+v", pol.in)
	}
	if d.Outcome != OutcomeDenied || d.Status != 403 {
		t.Errorf("decision = %s %d", d.Outcome, d.Status)
	}
}

// TestDecideIntoCarriesNothingOver: a reused Decision keeps its header map
// and signal slices for capacity only; nothing of the previous request's
// headers, tenant or signals reaches the next decision or its policy input.
func TestDecideIntoCarriesNothingOver(t *testing.T) {
	pol := &scriptedPolicy{dec: policy.Decision{Allow: true}}
	sig := &switchSignals{}
	r, err := New(testSnap(t, nil), Deps{Signals: sig, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	first := chat("auto")
	first.Headers = append(first.Headers, Header{"x-tenant-id", "acme"}, Header{"x-trace", "one"})
	sig.s = signals.Signals{Keywords: []string{"confidential"}, KeywordRules: []string{"confidential"},
		PII: []pii.Finding{{Type: pii.Email, Count: 1}}, Injection: injection.Result{Score: 0.9, Matched: []string{"instruction_override"}}}
	r.DecideInto(context.Background(), first, "id1", &d)
	if d.Request.Tenant != "acme" || d.Request.Headers["x-trace"] != "one" || len(d.Signals.PII) != 1 {
		t.Fatalf("first decision: request %+v, signals %+v", d.Request, d.Signals)
	}
	headers := d.Request.Headers

	// No body: the signal pass does not run, so only DecideInto can clear
	// the previous signals.
	second := &Request{Method: "GET", Path: "/v1/models", NoBody: true, Headers: []Header{{"accept", "*/*"}}}
	sig.s = signals.Signals{}
	r.DecideInto(context.Background(), second, "id2", &d)
	if _, ok := d.Request.Headers["x-trace"]; ok || d.Request.Tenant != "" || len(d.Request.Headers) != 1 {
		t.Errorf("second decision's request input: %+v", d.Request)
	}
	if len(d.Signals.Keywords)+len(d.Signals.KeywordRules)+len(d.Signals.PII)+len(d.Signals.Injection.Matched) != 0 || d.Signals.Injection.Score != 0 {
		t.Errorf("second decision's signals: %+v", d.Signals)
	}
	if len(pol.in.Request.Headers) != 1 || (pol.in.Signals != nil && len(pol.in.Signals.PII) != 0) {
		t.Errorf("second policy input: request %+v, signals %+v", pol.in.Request, pol.in.Signals)
	}
	if fmt.Sprintf("%p", headers) != fmt.Sprintf("%p", d.Request.Headers) {
		t.Error("the header map was not reused")
	}
	// Reset (a pooled Decision going back to its pool) keeps no view of
	// the request: not the parsed body, not the policy input.
	r.DecideInto(context.Background(), first, "id3", &d)
	if d.parsed.Body == nil || d.input.Signals == nil {
		t.Fatal("a body request left no parsed body or policy input to check")
	}
	d.Reset()
	if d.parsed.Body != nil || d.input.Signals != nil || len(d.Request.Headers) != 0 || d.ID != "" || len(d.Signals.PII) != 0 {
		t.Errorf("after Reset: parsed body %d bytes, input %+v, headers %v, id %q", len(d.parsed.Body), d.input, d.Request.Headers, d.ID)
	}
}

// switchSignals reports whatever s holds, through the reused out (as the
// engine does: Reset keeps capacity).
type switchSignals struct{ s signals.Signals }

func (f *switchSignals) Compute(_ context.Context, _ *openai.Request, out *signals.Signals) error {
	out.Reset()
	out.Keywords = append(out.Keywords, f.s.Keywords...)
	out.KeywordRules = append(out.KeywordRules, f.s.KeywordRules...)
	out.PII = append(out.PII, f.s.PII...)
	out.Injection.Score = f.s.Injection.Score
	out.Injection.Matched = append(out.Injection.Matched, f.s.Injection.Matched...)
	return nil
}
func (*switchSignals) Close() {}

// headerBlindPolicy is a scriptedPolicy whose rules never read
// input.request.headers.
type headerBlindPolicy struct{ scriptedPolicy }

func (*headerBlindPolicy) ReadsHeaders() bool { return false }

// TestHeaderMapOnlyWhenRead: when no policy reads the headers (and the
// decision log does not show them) the map is not built; the tenant is
// still found, repeated values joined as the map would join them, and a
// secret tenant header stays unread.
func TestHeaderMapOnlyWhenRead(t *testing.T) {
	q := chat("auto")
	q.Headers = append(q.Headers, Header{"x-tenant-id", "acme"}, Header{"x-tenant-id", "beta"}, Header{"x-trace", "1"})
	for _, tc := range []struct {
		name        string
		pol         Policy
		debug       bool
		tenant      string
		wantHeaders bool
	}{
		{"policy reads headers", &scriptedPolicy{dec: policy.Decision{Allow: true}}, false, "x-tenant-id", true},
		{"policy does not", &headerBlindPolicy{scriptedPolicy{dec: policy.Decision{Allow: true}}}, false, "x-tenant-id", false},
		{"debug decision log", &headerBlindPolicy{scriptedPolicy{dec: policy.Decision{Allow: true}}}, true, "x-tenant-id", true},
		{"secret tenant header", &headerBlindPolicy{scriptedPolicy{dec: policy.Decision{Allow: true}}}, false, "x-trace", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := testSnap(t, func(c *config.Config) {
				c.Policy.TenantHeader = tc.tenant
				c.Policy.DecisionLog = tc.debug
				c.Policy.DebugUnredacted = tc.debug
				if tc.tenant == "x-trace" {
					c.Policy.SecretHeaders = []string{"x-trace"}
				}
			})
			r, err := New(snap, Deps{Signals: fixedSignals{}, Policy: tc.pol})
			if err != nil {
				t.Fatal(err)
			}
			d := r.Decide(context.Background(), q, "id")
			if got := len(d.Request.Headers) > 0; got != tc.wantHeaders {
				t.Errorf("header map built: %v, want %v (%v)", got, tc.wantHeaders, d.Request.Headers)
			}
			want := "acme,beta"
			if tc.tenant == "x-trace" {
				want = ""
			}
			if d.Request.Tenant != want {
				t.Errorf("tenant %q, want %q", d.Request.Tenant, want)
			}
		})
	}
}

func TestReasonLabels(t *testing.T) {
	for _, tc := range []struct{ reason, label string }{
		{intentReason("code"), "intent_code"},
		{intentReason("not-an-intent"), "intent_not-an-intent"},
		{"keyword:confidential", "keyword"},
		{"complexity", "complexity"},
		{"a:b:c", "a"},
	} {
		if got := reasonLabel(tc.reason); got != tc.label {
			t.Errorf("reasonLabel(%q) = %q, want %q", tc.reason, got, tc.label)
		}
	}
	for _, in := range config.Intents {
		if got := intentReason(in); got != "intent:"+in {
			t.Errorf("intentReason(%q) = %q", in, got)
		}
	}
	// Known intents: neither string is built per request.
	if n := testing.AllocsPerRun(100, func() { _ = reasonLabel(intentReason(config.Intents[0])) }); n != 0 {
		t.Errorf("%v allocations per reason and label of a known intent", n)
	}
}
