package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// headerFlags collects repeated -H "name: value" flags.
type headerFlags []route.Header

func (h *headerFlags) String() string { return fmt.Sprint(*h) }

func (h *headerFlags) Set(v string) error {
	name, val, ok := strings.Cut(v, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	if !ok || name == "" {
		return fmt.Errorf("header %q: want name:value", v)
	}
	*h = append(*h, route.Header{Key: name, Value: strings.TrimSpace(val)})
	return nil
}

// explanation is what `switchyard explain` prints.
type explanation struct {
	Decision struct {
		ID      string            `json:"id"`
		Outcome string            `json:"outcome"`
		Allow   bool              `json:"allow"`
		Target  string            `json:"target,omitempty"`
		Tier    string            `json:"tier,omitempty"`
		Model   string            `json:"model,omitempty"`
		Reason  string            `json:"reason"`
		Status  int               `json:"status,omitempty"`
		Code    string            `json:"code,omitempty"`
		Message string            `json:"message,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
	} `json:"decision"`
	Signals        any              `json:"signals"`
	Proposal       policy.Proposal  `json:"proposal"`
	PolicyInput    any              `json:"policy_input"`
	PolicyRevision string           `json:"policy_revision,omitempty"`
	Rules          []string         `json:"rules_fired"`
	Timings        map[string]int64 `json:"timings_us"`
}

// runExplain shows what Switchyard would do with one request body and why.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("explain", "explain [--config FILE] [-H 'name: value']... [--path PATH] [FILE|-]", stderr)
	cfgPath := flags.String("config", "", "config file (default: the embedded sample config)")
	path := flags.String("path", "/v1/chat/completions", "request path")
	var hdrs headerFlags
	flags.Var(&hdrs, "H", "request header `name:value` (repeatable)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 1 {
		return fmt.Errorf("%w: explain takes one body file (or - for stdin)", ErrUsage)
	}
	var body []byte
	var err error
	if flags.NArg() == 0 || flags.Arg(0) == "-" {
		body, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	} else {
		body, err = os.ReadFile(flags.Arg(0))
	}
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	rt, err := route.Load(ctx, *cfgPath, zap.NewNop(), telemetry.NewMetrics())
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	defer rt.Close()
	q := &route.Request{Method: "POST", Path: *path, Body: body,
		Headers: append([]route.Header{{Key: "content-type", Value: "application/json"}}, hdrs...)}
	d := rt.Decide(ctx, q, "explain")

	// The policy sees empty arrays where Go has nil slices; show the same.
	sig := d.Signals
	if sig.Keywords == nil {
		sig.Keywords = []string{}
	}
	if sig.KeywordRules == nil {
		sig.KeywordRules = []string{}
	}
	if sig.PII == nil {
		sig.PII = []pii.Finding{}
	}
	if sig.Injection.Matched == nil {
		sig.Injection.Matched = []string{}
	}
	var out explanation
	out.Decision.ID, out.Decision.Outcome, out.Decision.Allow = d.ID, d.Outcome, d.Allowed()
	out.Decision.Target, out.Decision.Tier, out.Decision.Model, out.Decision.Reason = d.Target, d.Tier, d.Model, d.Reason
	out.Decision.Status, out.Decision.Code, out.Decision.Message, out.Decision.Headers = d.Status, d.Code, d.Message, d.Headers
	out.Signals, out.Proposal, out.PolicyRevision = sig, d.Proposal, d.PolicyRevision
	out.PolicyInput = map[string]any{"version": policy.InputVersion, "request": d.Request, "signals": sig, "proposal": d.Proposal}
	out.Timings = map[string]int64{"parse": d.Durations.Parse.Microseconds(), "signals": d.Durations.Signals.Microseconds(),
		"policy": d.Durations.Policy.Microseconds(), "total": d.Durations.Total.Microseconds()}
	out.Rules = []string{}
	if d.PolicyRevision != "" {
		rules, err := rt.Explain(ctx, d)
		if err != nil {
			fmt.Fprintf(stderr, "switchyard: explain: tracing the policy failed: %v\n", err)
		}
		if rules != nil {
			out.Rules = rules
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
