package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// policyFS is a one-file policy source.
func policyFS(src string) fstest.MapFS {
	return fstest.MapFS{"p.rego": {Data: []byte(src)}}
}

func plainInput(target string) *Input {
	return &Input{
		Request:  Request{Method: "POST", Path: "/v1/chat/completions"},
		Signals:  &signals.Signals{},
		Proposal: Proposal{Target: target, Tier: "fast", Reason: "default"},
	}
}

func TestLoadEmbedded(t *testing.T) {
	e := newTestEngine(t, nil, nil)
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(e.Revision()) {
		t.Errorf("revision %q is not 12 hex digits", e.Revision())
	}
	srcs := strings.Join(e.Sources(), " ")
	for _, want := range []string{"policies/routing.rego", "policies/governance.rego"} {
		if !strings.Contains(srcs, want) {
			t.Errorf("sources %q lack %s", srcs, want)
		}
	}
	if strings.Contains(srcs, "_test.rego") {
		t.Errorf("sources %q include tests", srcs)
	}
	if e.Query() != DefaultQuery {
		t.Errorf("query %q", e.Query())
	}
	d, err := e.Eval(context.Background(), plainInput("fast"))
	if err != nil || !d.Allow || d.Target != "fast" || d.Reason != "default" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

// TestLoadDir loads a directory the way `opa run DIR` would: data files are
// mounted at their directory's path, tests and testdata are skipped.
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.rego", `package switchyard
decision := {"allow": true, "target": data.routes[input.proposal.target], "reason": data.acme.teams.reason}
`)
	write("routes.json", `{"routes": {"fast": "reasoning"}}`)
	write("acme/teams/data.yaml", "reason: yaml-mounted\n")
	write("acme/teams/more.yml", "extra: 1\n")
	write("policy_test.rego", "package broken_test\nthis does not parse\n")
	write("testdata/junk.rego", "this does not parse either\n")
	write(".hidden/junk.rego", "nor this\n")
	write("notes.txt", "ignored\n")

	e := newTestEngine(t, func(c *config.Config) { c.Policy.Dirs = []string{dir} }, nil)
	d, err := e.Eval(context.Background(), plainInput("fast"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Target != "reasoning" || d.Reason != "yaml-mounted" {
		t.Fatalf("got %+v", d)
	}
	want := []string{
		filepath.Join(dir, "acme/teams/data.yaml"), filepath.Join(dir, "acme/teams/more.yml"),
		filepath.Join(dir, "policy.rego"), filepath.Join(dir, "routes.json"),
	}
	if got := e.Sources(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("sources\n got  %q\n want %q", got, want)
	}

	// The revision follows the content.
	rev := e.Revision()
	write("routes.json", `{"routes": {"fast": "onprem"}}`)
	e2 := newTestEngine(t, func(c *config.Config) { c.Policy.Dirs = []string{dir} }, nil)
	if e2.Revision() == rev {
		t.Error("revision did not change with a data file")
	}
	e3 := newTestEngine(t, func(c *config.Config) {
		c.Policy.Dirs = []string{dir}
		c.Policy.Data["deny_secrets"] = false
	}, nil)
	if e3.Revision() == e2.Revision() {
		t.Error("revision did not change with policy.data")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		fs   fstest.MapFS
		want []string // substrings of the error
	}{
		{"parse error has file:line:col", policyFS("package switchyard\n\ndecision := {\n  \"allow\": true,,\n}\n"),
			[]string{"p.rego:4:"}},
		{"compile error has file:line:col", policyFS("package switchyard\n\ndecision := {\"allow\": nope(1)}\n"),
			[]string{"p.rego:3:", "undefined function nope"}},
		{"http.send refused", policyFS("package switchyard\n\ndecision := {\"allow\": http.send({\"method\": \"GET\", \"url\": \"http://x\"}).status_code == 200}\n"),
			[]string{"p.rego:3:", "http.send"}},
		{"net.lookup_ip_addr refused", policyFS("package switchyard\n\ndecision := {\"allow\": count(net.lookup_ip_addr(\"x\")) > 0}\n"),
			[]string{"p.rego:3:", "net.lookup_ip_addr"}},
		{"opa.runtime refused", policyFS("package switchyard\n\ndecision := {\"allow\": opa.runtime().env.KEY == \"x\"}\n"),
			[]string{"p.rego:3:", "opa.runtime"}},
		{"no policy files", fstest.MapFS{"data.json": {Data: []byte(`{}`)}},
			[]string{"no .rego policy files"}},
		{"query not defined", policyFS("package other\n\nx := 1\n"),
			[]string{"data.switchyard.decision", "no loaded policy defines it"}},
		{"bad data file", fstest.MapFS{"p.rego": {Data: []byte("package switchyard\ndecision := {\"allow\": true}\n")}, "d.json": {Data: []byte(`{"a": `)}},
			[]string{"d.json"}},
		{"conflicting data files", fstest.MapFS{
			"p.rego": {Data: []byte("package switchyard\ndecision := {\"allow\": true}\n")},
			"a.json": {Data: []byte(`{"x": {"y": 1}}`)}, "b.json": {Data: []byte(`{"x": {"y": 2}}`)}},
			[]string{"data.x.y is already set"}},
		{"data file sets data.switchyard.config", fstest.MapFS{
			"p.rego":            {Data: []byte("package switchyard\ndecision := {\"allow\": true}\n")},
			"switchyard/x.json": {Data: []byte(`{"config": {}}`)}},
			[]string{"data.switchyard.config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), testSnapshot(t, nil), Options{FS: tc.fs})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrLoad) {
				t.Errorf("error does not wrap ErrLoad: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCompileErrorIsTyped(t *testing.T) {
	_, err := New(context.Background(), testSnapshot(t, nil), Options{FS: policyFS("package switchyard\n\ndecision := {\"allow\": true,,}\n")})
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Problems) == 0 {
		t.Fatalf("want a *CompileError, got %v", err)
	}
	p := ce.Problems[0]
	if p.File != "p.rego" || p.Line == 0 || p.Col == 0 {
		t.Errorf("problem not located: %+v", p)
	}
}

func TestConfigErrorsRefuseLoad(t *testing.T) {
	_, err := New(context.Background(), testSnapshot(t, func(c *config.Config) {
		c.Policy.Data["injection"] = map[string]any{"threshold": 0.8, "action": "block"}
		c.Policy.Data["tenants"] = map[string]any{"acme": map[string]any{"allowed_targets": []any{"nowhere"}}}
	}), Options{})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ConfigError, got %v", err)
	}
	got := strings.Join(ce.Problems, "\n")
	for _, w := range []string{"injection.action must be deny, guarded or off", `tenants.acme.allowed_targets names unknown target "nowhere"`} {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
}

func TestEvalOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		policy  string
		in      *Input
		want    Decision
		wantErr error
	}{
		{"undefined", `package switchyard
decision := {"allow": true} if input.request.method == "DELETE"`, nil, Decision{}, ErrUndefined},
		{"deny defaults to 403", `package switchyard
decision := {"allow": false, "reason": "no"}`, nil, Decision{Reason: "no", Status: 403}, nil},
		{"allow defaults to the proposal's target", `package switchyard
decision := {"allow": true}`, nil, Decision{Allow: true, Target: "fast"}, nil},
		{"headers are lower-cased", `package switchyard
decision := {"allow": true, "target": "reasoning", "headers": {"X-Switchyard-Team": "a b"}}`, nil,
			Decision{Allow: true, Target: "reasoning", Headers: map[string]string{"x-switchyard-team": "a b"}}, nil},
		{"deny with status", `package switchyard
decision := {"allow": false, "status": 429, "message": "slow down"}`, nil, Decision{Status: 429, Message: "slow down"}, nil},
		{"extra keys ignored", `package switchyard
decision := {"allow": true, "debug": [1, 2]}`, nil, Decision{Allow: true, Target: "fast"}, nil},
		{"conflicting values", `package switchyard
decision := {"allow": true}
decision := {"allow": false}`, nil, Decision{}, ErrEval},
		{"a built-in error makes the rule undefined", `package switchyard
decision := {"allow": true, "target": input.proposal.target} if {
	x := {"a": 1}
	x.a == 1
	1 / 0 == 1
}`, nil, Decision{}, ErrUndefined},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t, nil, policyFS(tc.policy))
			in := tc.in
			if in == nil {
				in = plainInput("fast")
			}
			d, err := e.Eval(context.Background(), in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %+v, %v", tc.wantErr, d, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(d) != fmt.Sprint(tc.want) {
				t.Errorf("got %+v, want %+v", d, tc.want)
			}
		})
	}
}

func TestInvalidDecisions(t *testing.T) {
	cases := map[string]string{
		"not an object":       `"allow"`,
		"allow missing":       `{"target": "fast"}`,
		"allow not bool":      `{"allow": "yes"}`,
		"status too small":    `{"allow": false, "status": 42}`,
		"status too large":    `{"allow": false, "status": 700}`,
		"status not integer":  `{"allow": false, "status": 403.5}`,
		"status a string":     `{"allow": false, "status": "403"}`,
		"target not string":   `{"allow": true, "target": 5}`,
		"unknown target":      `{"allow": true, "target": "nowhere"}`,
		"reason not string":   `{"allow": false, "reason": ["x"]}`,
		"headers not object":  `{"allow": true, "headers": ["x"]}`,
		"header name invalid": `{"allow": true, "headers": {"x y": "1"}}`,
		"header value CRLF":   `{"allow": true, "headers": {"x-a": "1\r\nx-b: 2"}}`,
		"header value number": `{"allow": true, "headers": {"x-a": 1}}`,
		"message too long":    `{"allow": false, "message": concat("", ["x" | some _ in numbers.range(1, 5000)])}`,
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEngine(t, nil, policyFS("package switchyard\ndecision := "+value+"\n"))
			d, err := e.Eval(context.Background(), plainInput("fast"))
			if !errors.Is(err, ErrInvalidDecision) {
				t.Fatalf("want ErrInvalidDecision, got %+v, %v", d, err)
			}
		})
	}
	t.Run("allowed without any target", func(t *testing.T) {
		e := newTestEngine(t, nil, policyFS(`package switchyard
decision := {"allow": true}`))
		_, err := e.Eval(context.Background(), plainInput(""))
		if !errors.Is(err, ErrInvalidDecision) {
			t.Fatalf("want ErrInvalidDecision, got %v", err)
		}
	})
}

// TestTimeout: an expensive policy stops at the deadline with ErrTimeout,
// long before it would finish.
func TestTimeout(t *testing.T) {
	cases := map[string]string{
		"nested iteration": `package switchyard
n := 4000 + input.request.max_tokens
decision := {"allow": count([1 | some i in numbers.range(1, n); some j in numbers.range(1, n); (i + j) % 7 == 0]) > 0}`,
		"huge range": `package switchyard
decision := {"allow": count(numbers.range(1, 500000000 + input.request.max_tokens)) > 0}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTestEngine(t, func(c *config.Config) { c.Policy.EvalTimeout = config.Duration(20 * time.Millisecond) }, policyFS(src))
			start := time.Now()
			_, err := e.Eval(context.Background(), plainInput("fast"))
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("want ErrTimeout, got %v", err)
			}
			// A loose bound: the work itself takes seconds to minutes.
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Eval returned after %v", el)
			}
		})
	}
	t.Run("caller's context", func(t *testing.T) {
		e := newTestEngine(t, nil, policyFS(cases["nested iteration"]))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.Eval(ctx, plainInput("fast")); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrEval) {
			t.Fatalf("want ErrEval wrapping context.Canceled, got %v", err)
		}
	})
}

func TestNoPanicEscapes(t *testing.T) {
	e := newTestEngine(t, nil, nil)
	e.hot.store = nil // any evaluation now dereferences nil
	d, err := e.Eval(context.Background(), plainInput("fast"))
	if !errors.Is(err, ErrEval) || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("want a recovered panic as ErrEval, got %+v, %v", d, err)
	}
	if _, err := e.Eval(context.Background(), nil); !errors.Is(err, ErrEval) {
		t.Fatalf("nil input: want ErrEval, got %v", err)
	}
}

// TestConcurrentEval runs different inputs from many goroutines (run with
// -race) and checks every decision against its input.
func TestConcurrentEval(t *testing.T) {
	e := newTestEngine(t, nil, nil)
	type tc struct {
		in     func() *Input
		allow  bool
		target string
		reason string
	}
	cases := []tc{
		{func() *Input { return realisticInput() }, true, "reasoning", "intent:code"},
		{func() *Input {
			in := realisticInput()
			in.Signals.PII = []pii.Finding{{Type: pii.IBAN, Count: 2}}
			return in
		}, true, "onprem", "pii_to_onprem"},
		{func() *Input {
			in := realisticInput()
			in.Signals.PII = []pii.Finding{{Type: pii.JWT, Count: 1}}
			return in
		}, false, "", "secret_detected"},
		{func() *Input {
			in := realisticInput()
			in.Signals.Injection.Score = 0.93
			return in
		}, false, "", "prompt_injection"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 100; i++ {
				c := cases[(g+i)%len(cases)]
				d, err := e.Eval(context.Background(), c.in())
				if err != nil {
					errs <- err
					return
				}
				if d.Allow != c.allow || d.Target != c.target || d.Reason != c.reason {
					errs <- fmt.Errorf("case %d: got %+v", (g+i)%len(cases), d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestExplain(t *testing.T) {
	e := newTestEngine(t, nil, nil)
	in := realisticInput()
	in.Signals.PII = []pii.Finding{{Type: pii.CreditCard, Count: 1}}
	d, lines, err := e.Explain(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Target != "onprem" || d.Reason != "pii_to_onprem" {
		t.Fatalf("got %+v", d)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"governance.rego:", "data.switchyard.governance.pii_triggered => true",
		"data.switchyard.decision => ", `"target": "onprem"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("explain lacks %q:\n%s", want, all)
		}
	}
	// Rules that did not fire are not listed.
	for _, absent := range []string{"secrets_triggered", "data.switchyard.governance.quiet"} {
		if strings.Contains(all, absent) {
			t.Errorf("explain lists %s, which did not fire:\n%s", absent, all)
		}
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("duplicate line %q", l)
		}
		seen[l] = true
	}
}

func TestHeadersOnlyWhenRead(t *testing.T) {
	reads := `package switchyard
decision := {"allow": true, "reason": input.request.headers["x-team"]}`
	e := newTestEngine(t, nil, policyFS(reads))
	in := plainInput("fast")
	in.Request.Headers = map[string]string{"x-team": "blue"}
	d, err := e.Eval(context.Background(), in)
	if err != nil || d.Reason != "blue" {
		t.Fatalf("got %+v, %v", d, err)
	}
	if !e.headers {
		t.Error("a policy reading headers did not get them")
	}
	for _, src := range []string{
		"package switchyard\ndecision := {\"allow\": true, \"reason\": input.request[k]} if k := \"model\"",
		"package switchyard\ndecision := {\"allow\": true, \"reason\": json.marshal(input)}",
		"package switchyard\ndecision := {\"allow\": true, \"reason\": json.marshal(input.request)}",
	} {
		if !newTestEngine(t, nil, policyFS(src)).headers {
			t.Errorf("headers not built for a policy that may read them:\n%s", src)
		}
	}
	if newTestEngine(t, nil, nil).headers {
		t.Error("the shipped policies do not read headers, yet they are built")
	}
}

// TestStaticRules checks that rules depending only on data are precomputed
// and that input-dependent ones are not.
func TestStaticRules(t *testing.T) {
	e := newTestEngine(t, nil, policyFS(`package switchyard
limit := object.get(data.switchyard.config, "limit", 3)
doubled := limit * 2
now_ns := time.now_ns()
big := input.request.max_tokens > limit
uses_big if big
# Under "with", the precomputed value must not be used.
overridden := l if {
	l := doubled with data.switchyard.config as {"limit": 7}
}
decision := {"allow": true, "reason": sprintf("%v/%v", [doubled, overridden]), "target": input.proposal.target}`))
	for ref, want := range map[string]bool{
		"limit": true, "doubled": true, "now_ns": false, "big": false, "uses_big": false,
		"overridden": false, "decision": false,
	} {
		n := e.static.lookup(mustRef("data.switchyard." + ref))
		if (n != nil) != want {
			t.Errorf("%s: static=%v, want %v", ref, n != nil, want)
		}
	}
	d, err := e.Eval(context.Background(), plainInput("fast"))
	if err != nil || d.Reason != "6/14" {
		t.Fatalf("got %+v, %v", d, err)
	}
}
