package policy

import (
	"math"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// Object keys of the input document, built once: every evaluation shares
// them (OPA never mutates input terms).
var (
	keyVersion  = ast.StringTerm("version")
	keyRequest  = ast.StringTerm("request")
	keySignals  = ast.StringTerm("signals")
	keyProposal = ast.StringTerm("proposal")
	keyTargets  = ast.StringTerm("targets")

	keyMethod         = ast.StringTerm("method")
	keyPath           = ast.StringTerm("path")
	keyHeaders        = ast.StringTerm("headers")
	keyTenant         = ast.StringTerm("tenant")
	keyModel          = ast.StringTerm("model")
	keyStream         = ast.StringTerm("stream")
	keyMaxTokens      = ast.StringTerm("max_tokens")
	keyResponseFormat = ast.StringTerm("response_format")
	keyHasTools       = ast.StringTerm("has_tools")
	keyMessageCount   = ast.StringTerm("message_count")
	keyPromptChars    = ast.StringTerm("prompt_chars")
	keyEstTokens      = ast.StringTerm("est_tokens")

	keyIntent           = ast.StringTerm("intent")
	keyIntentConfidence = ast.StringTerm("intent_confidence")
	keyComplexity       = ast.StringTerm("complexity")
	keyKeywords         = ast.StringTerm("keywords")
	keyPII              = ast.StringTerm("pii")
	keyType             = ast.StringTerm("type")
	keyCount            = ast.StringTerm("count")
	keyInjection        = ast.StringTerm("injection")
	keyScore            = ast.StringTerm("score")
	keyMatched          = ast.StringTerm("matched")
	keyClassifier       = ast.StringTerm("classifier")
	keySkippedParts     = ast.StringTerm("skipped_parts")
	keyTruncated        = ast.StringTerm("truncated")

	keyTarget = ast.StringTerm("target")
	keyTier   = ast.StringTerm("tier")
	keyReason = ast.StringTerm("reason")

	versionTerm = ast.InternedTerm(InputVersion)
)

// targetsData is input.targets (and data.switchyard.targets): {name: {tier,
// models, providers, onprem, cascade}}, models in failover order, providers
// deduplicated in that order.
func targetsData(snap *config.Snapshot) map[string]any {
	out := make(map[string]any, len(snap.TargetNames))
	for _, name := range snap.TargetNames {
		t, ok := snap.Target(name)
		if !ok {
			continue
		}
		models := make([]any, 0, len(t.Models))
		providers := []any{}
		seen := map[string]bool{}
		for _, m := range t.Models {
			if m == nil {
				continue
			}
			models = append(models, m.Name)
			if !seen[m.ProviderName] {
				seen[m.ProviderName] = true
				providers = append(providers, m.ProviderName)
			}
		}
		out[name] = map[string]any{
			"tier": t.Tier, "models": models, "providers": providers,
			"onprem": t.OnPrem, "cascade": t.Cascade,
		}
	}
	return out
}

// commonStrings are values many requests share; with the snapshot's names
// (targets, tiers, models, providers, intents, keyword signals) they are
// turned into terms once per Engine instead of once per request.
var commonStrings = []string{
	"", "GET", "POST", "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
	"text", "json_object", "json_schema", "auto", "unknown",
	signals.SourceEmbedded, signals.SourceLLM, signals.SourceCache,
	pii.Email, pii.Phone, pii.CreditCard, pii.IBAN, pii.SSN, pii.IPv4, pii.IPv6,
	pii.APIKey, pii.PrivateKey, pii.JWT, pii.Secret,
	"default", "model", "complexity", "no_body", "unparsed",
	// Header names clients commonly send.
	"accept", "accept-encoding", "content-type", "content-length", "user-agent", "host",
	"x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-envoy-expected-rq-timeout-ms",
	"x-stainless-lang", "x-stainless-os", "x-stainless-arch", "x-stainless-runtime",
	"x-stainless-runtime-version", "x-stainless-package-version", "x-stainless-retry-count",
	"openai-organization", "openai-project", "traceparent", "tracestate",
}

// internTable maps strings to shared terms; read-only once built.
type internTable map[string]*ast.Term

func newInternTable(snap *config.Snapshot) internTable {
	t := internTable{}
	add := func(ss ...string) {
		for _, s := range ss {
			if _, ok := t[s]; !ok {
				t[s] = ast.StringTerm(s)
			}
		}
	}
	add(commonStrings...)
	add(config.Intents...)
	for _, in := range config.Intents {
		add("intent:" + in)
	}
	for _, name := range snap.TargetNames {
		add(name)
		if ti, ok := snap.Target(name); ok {
			add(ti.Tier)
		}
	}
	for _, m := range snap.Models() {
		add(m.Name, m.UpstreamModel, m.ProviderName, m.Tier)
	}
	cfg := snap.Config
	if cfg.Policy.TenantHeader != "" {
		add(cfg.Policy.TenantHeader)
	}
	for alias := range cfg.Routing.Aliases {
		add(alias)
	}
	for intent := range cfg.Routing.Intents {
		add(intent, "intent:"+intent)
	}
	for name, k := range cfg.Routing.Keywords {
		sig := k.Signal
		if sig == "" {
			sig = name
		}
		add(sig, "keyword:"+sig)
	}
	return t
}

// headersUsed reports whether any rule may read input.request.headers: a
// ref to input, input.request or input.request.headers, or one with a
// variable where "request" or "headers" would be. When none does, the
// engine does not build the headers object for each request.
func headersUsed(c *ast.Compiler) bool {
	used := false
	for _, mod := range c.Modules {
		ast.WalkRefs(mod, func(r ast.Ref) bool {
			if used || !r.HasPrefix(ast.InputRootRef) {
				return used
			}
			if len(r) < 2 || !r[1].IsGround() || r[1].Equal(keyRequest) {
				if len(r) < 3 || !r[2].IsGround() || r[2].Equal(keyHeaders) {
					used = true
				}
			}
			return used
		})
		if used {
			return true
		}
	}
	return false
}

// termSlab hands out terms from one allocation per input document.
type termSlab struct {
	terms  []ast.Term
	intern internTable
}

func (s *termSlab) term(v ast.Value) *ast.Term {
	if len(s.terms) == 0 {
		s.terms = make([]ast.Term, 16)
	}
	t := &s.terms[0]
	s.terms = s.terms[1:]
	t.Value = v
	return t
}

func (s *termSlab) str(v string) *ast.Term {
	if t, ok := s.intern[v]; ok {
		return t
	}
	return s.term(ast.String(v))
}

func (s *termSlab) boolean(v bool) *ast.Term { return ast.InternedTerm(v) }

func (s *termSlab) int(v int64) *ast.Term {
	if v >= -1 && v <= 512 {
		return ast.InternedTerm(int(v))
	}
	return s.term(ast.Number(strconv.FormatInt(v, 10)))
}

func (s *termSlab) float(v float64) *ast.Term {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0 // not representable in JSON; a policy sees 0
	}
	if v == math.Trunc(v) && math.Abs(v) <= 512 {
		return ast.InternedTerm(int(v))
	}
	return s.term(ast.Number(strconv.FormatFloat(v, 'g', -1, 64)))
}

// inputValue builds the input document as an AST value from the Go structs,
// without a JSON round trip. Terms come from one slab; the key terms and
// input.targets are shared.
func (e *Engine) inputValue(in *Input) ast.Value {
	sig := in.Signals
	if sig == nil {
		sig = &signals.Signals{}
	}
	n := 24 + len(sig.Keywords) + 3*len(sig.PII) + len(sig.Injection.Matched)
	if e.headers {
		n += 1 + 2*len(in.Request.Headers)
	}
	s := &termSlab{terms: make([]ast.Term, n), intern: e.intern}
	return ast.NewObject(
		[2]*ast.Term{keyVersion, versionTerm},
		[2]*ast.Term{keyRequest, s.term(requestValue(s, &in.Request, e.headers))},
		[2]*ast.Term{keySignals, s.term(signalsValue(s, sig))},
		[2]*ast.Term{keyProposal, s.term(ast.NewObject(
			[2]*ast.Term{keyTarget, s.str(in.Proposal.Target)},
			[2]*ast.Term{keyTier, s.str(in.Proposal.Tier)},
			[2]*ast.Term{keyReason, s.str(in.Proposal.Reason)},
		))},
		[2]*ast.Term{keyTargets, e.targets},
	)
}

// emptyObject stands in for input.request.headers when no policy reads it.
var emptyObject = ast.NewTerm(ast.NewObject())

func requestValue(s *termSlab, r *Request, withHeaders bool) ast.Value {
	headers := emptyObject
	if withHeaders && len(r.Headers) > 0 {
		h := ast.NewObjectWithCapacity(len(r.Headers))
		for k, v := range r.Headers {
			h.Insert(s.str(k), s.str(v))
		}
		headers = s.term(h)
	}
	return ast.NewObject(
		[2]*ast.Term{keyMethod, s.str(r.Method)},
		[2]*ast.Term{keyPath, s.str(r.Path)},
		[2]*ast.Term{keyHeaders, headers},
		[2]*ast.Term{keyTenant, s.str(r.Tenant)},
		[2]*ast.Term{keyModel, s.str(r.Model)},
		[2]*ast.Term{keyStream, s.boolean(r.Stream)},
		[2]*ast.Term{keyMaxTokens, s.int(r.MaxTokens)},
		[2]*ast.Term{keyResponseFormat, s.str(r.ResponseFormat)},
		[2]*ast.Term{keyHasTools, s.boolean(r.HasTools)},
		[2]*ast.Term{keyMessageCount, s.int(int64(r.MessageCount))},
		[2]*ast.Term{keyPromptChars, s.int(int64(r.PromptChars))},
		[2]*ast.Term{keyEstTokens, s.int(int64(r.EstTokens))},
	)
}

func signalsValue(s *termSlab, sig *signals.Signals) ast.Value {
	keywords := make([]*ast.Term, len(sig.Keywords))
	for i, k := range sig.Keywords {
		keywords[i] = s.str(k)
	}
	pii := make([]*ast.Term, len(sig.PII))
	for i, f := range sig.PII {
		pii[i] = s.term(ast.NewObject(
			[2]*ast.Term{keyType, s.str(f.Type)},
			[2]*ast.Term{keyCount, s.int(int64(f.Count))},
		))
	}
	matched := make([]*ast.Term, len(sig.Injection.Matched))
	for i, m := range sig.Injection.Matched {
		matched[i] = s.str(m)
	}
	return ast.NewObject(
		[2]*ast.Term{keyIntent, s.str(sig.Intent)},
		[2]*ast.Term{keyIntentConfidence, s.float(sig.IntentConfidence)},
		[2]*ast.Term{keyComplexity, s.float(sig.Complexity)},
		[2]*ast.Term{keyKeywords, s.term(ast.NewArray(keywords...))},
		[2]*ast.Term{keyPII, s.term(ast.NewArray(pii...))},
		[2]*ast.Term{keyInjection, s.term(ast.NewObject(
			[2]*ast.Term{keyScore, s.float(sig.Injection.Score)},
			[2]*ast.Term{keyMatched, s.term(ast.NewArray(matched...))},
		))},
		[2]*ast.Term{keyClassifier, s.str(sig.Classifier)},
		[2]*ast.Term{keyPromptChars, s.int(int64(sig.PromptChars))},
		[2]*ast.Term{keyEstTokens, s.int(int64(sig.EstTokens))},
		[2]*ast.Term{keySkippedParts, s.int(int64(sig.SkippedParts))},
		[2]*ast.Term{keyTruncated, s.boolean(sig.Truncated)},
	)
}
