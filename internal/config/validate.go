package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-llm/switchyard/internal/setcache"
)

// Defaults, documented in README "Configuration".
const (
	DefaultGRPCAddr            = ":50051"
	DefaultAdminAddr           = ":9090"
	DefaultMaxBodyBytes        = 8 << 20
	DefaultGRPCMaxMessageBytes = 32 << 20
	DefaultShutdownGrace       = 15 * time.Second
	DefaultReloadInterval      = time.Second
	DefaultGCPercent           = 400
	DefaultStreamWorkers       = 64
	MaxStreamWorkers           = 4096
	DefaultMaxMessages         = 1000
	DefaultMaxJSONDepth        = 64
	DefaultMaxClassifierChars  = 16 << 10
	DefaultMaxHeaders          = 200
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultMaxDecodedBytes     = 8 << 20
	DefaultMinConfidence       = 0.45
	DefaultCacheSize           = 65536
	DefaultMessageCacheSize    = 16384
	MaxCacheSize               = setcache.MaxSize // any cache size key
	DefaultLLMTimeout          = 150 * time.Millisecond
	DefaultBreakerFailures     = 5
	DefaultBreakerCoolDown     = 30 * time.Second
	DefaultLLMMaxConcurrent    = 64
	DefaultPolicyQuery         = "data.switchyard.decision"
	DefaultPolicyEvalTimeout   = 50 * time.Millisecond
	DefaultSLO                 = 30 * time.Second
	DefaultListenerPort        = 10000
	DefaultEnvoyAdminPort      = 9901
	DefaultSwitchyardAddr      = "127.0.0.1:50051"
	DefaultMessageTimeout      = 200 * time.Millisecond
)

// Intents are the fixed intent names of the embedded classifier.
var Intents = []string{
	"chitchat", "summarize", "rewrite", "classify", "extract", "translate",
	"code", "math", "reasoning", "legal", "creative", "qa",
}

func (c *Config) applyDefaults() {
	s := &c.Server
	setStr(&s.GRPCAddr, DefaultGRPCAddr)
	setStr(&s.AdminAddr, DefaultAdminAddr)
	setInt64(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&s.GRPCMaxMessageBytes, DefaultGRPCMaxMessageBytes)
	setStr(&s.FailureMode, FailClosed)
	setDur(&s.ShutdownGrace, DefaultShutdownGrace)
	setDur(&s.ReloadInterval, DefaultReloadInterval)
	setInt(&s.GCPercent, DefaultGCPercent)
	setInt(&s.StreamWorkers, DefaultStreamWorkers)
	setInt(&s.Limits.MaxMessages, DefaultMaxMessages)
	setInt(&s.Limits.MaxJSONDepth, DefaultMaxJSONDepth)
	setInt(&s.Limits.MaxClassifierChars, DefaultMaxClassifierChars)
	setInt(&s.Limits.MaxHeaders, DefaultMaxHeaders)
	setInt(&s.Limits.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setStr(&s.Content.Encodings, "decode")
	setInt64(&s.Content.MaxDecodedBytes, DefaultMaxDecodedBytes)
	setStr(&s.Content.NonJSON, "pass")

	for name, p := range c.Providers {
		if p.Auth.SecretEnv != "" || p.Auth.SecretFile != "" {
			setStr(&p.Auth.Header, "authorization")
			if p.Auth.Header == "authorization" && p.Auth.Prefix == "" {
				p.Auth.Prefix = "Bearer "
			}
		}
		c.Providers[name] = p
	}
	for i := range c.Models {
		m := &c.Models[i]
		setStr(&m.UpstreamModel, m.Name)
		if p, ok := c.Providers[m.Provider]; ok && p.OnPrem {
			m.OnPrem = true
		}
	}
	for name, t := range c.Targets {
		setDur(&t.SLO, DefaultSLO)
		if t.Timeout == 0 {
			n := max(len(t.Models), 1)
			t.Timeout = Duration(time.Duration(t.SLO)*time.Duration(n) + time.Second)
		}
		c.Targets[name] = t
	}
	r := &c.Routing
	if r.Aliases == nil {
		r.Aliases = map[string]string{}
	}
	for name, k := range r.Keywords {
		setStr(&k.Signal, name)
		r.Keywords[name] = k
	}

	cl := &c.Classifier
	setStr(&cl.Mode, "embedded")
	setFloat(&cl.MinConfidence, DefaultMinConfidence)
	setInt(&cl.CacheSize, DefaultCacheSize)
	setInt(&c.Signals.MessageCacheSize, DefaultMessageCacheSize)
	setDur(&cl.LLM.Timeout, DefaultLLMTimeout)
	setInt(&cl.LLM.Breaker.Failures, DefaultBreakerFailures)
	setDur(&cl.LLM.Breaker.CoolDown, DefaultBreakerCoolDown)
	setInt(&cl.LLM.MaxConcurrent, DefaultLLMMaxConcurrent)

	p := &c.Policy
	setStr(&p.Query, DefaultPolicyQuery)
	setDur(&p.EvalTimeout, DefaultPolicyEvalTimeout)

	a := &c.Accounting
	if a.BaselineModel == "" {
		a.BaselineModel = c.mostExpensive(TierReasoning)
	}

	e := &c.Envoy
	setInt(&e.ListenerPort, DefaultListenerPort)
	setInt(&e.AdminPort, DefaultEnvoyAdminPort)
	setStr(&e.SwitchyardAddr, DefaultSwitchyardAddr)
	setDur(&e.MessageTimeout, DefaultMessageTimeout)
	if e.RetriableStatus == nil {
		e.RetriableStatus = []int{429}
	}
	o := &e.Outlier
	setInt(&o.Consecutive5xx, 3)
	setInt(&o.ConsecutiveGatewayFailure, 3)
	setDur(&o.BaseEjectionTime, 30*time.Second)
	setDur(&o.Interval, 10*time.Second)
	setInt(&o.MaxEjectionPercent, 100)
}

// mostExpensive returns the model of tier (any tier if none) with the
// highest blended price, the default accounting baseline.
func (c *Config) mostExpensive(tier string) string {
	best, bestPrice := "", -1.0
	for pass := 0; pass < 2 && best == ""; pass++ {
		for _, m := range c.Models {
			if pass == 0 && m.Tier != tier {
				continue
			}
			if p := m.Price.InputPerMTok + m.Price.OutputPerMTok; p > bestPrice {
				best, bestPrice = m.Name, p
			}
		}
	}
	return best
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	headerRE = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_` + "`" + `|~-]+$`)
)

// validate returns every problem with its key path; Parse adds the lines.
func (c *Config) validate() []Problem {
	var v validator
	if c.Version != 1 {
		v.add("version", "must be 1 (got %d)", c.Version)
	}
	c.validateServer(&v)
	c.validatePortfolio(&v)
	c.validateRouting(&v)
	c.validateClassifier(&v)
	c.validatePolicy(&v)
	if c.Accounting.BaselineModel != "" && c.model(c.Accounting.BaselineModel) == nil {
		v.add("accounting.baseline_model", "model %q is not defined under models", c.Accounting.BaselineModel)
	}
	return v.probs
}

type validator struct{ probs []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validateServer(v *validator) {
	s := c.Server
	checkAddr(v, "server.grpc_addr", s.GRPCAddr)
	checkAddr(v, "server.admin_addr", s.AdminAddr)
	if s.MaxBodyBytes <= 0 {
		v.add("server.max_body_bytes", "must be positive")
	}
	if s.GRPCMaxMessageBytes < 1<<20 {
		v.add("server.grpc_max_message_bytes", "must be at least 1048576 (1 MiB)")
	} else if int64(s.GRPCMaxMessageBytes) < s.MaxBodyBytes+64<<10 {
		v.add("server.grpc_max_message_bytes", "must exceed max_body_bytes by at least 64 KiB so a maximal body fits in one ext_proc message (%d <= %d)", s.GRPCMaxMessageBytes, s.MaxBodyBytes)
	}
	if s.GCPercent < -1 || s.GCPercent == 0 {
		v.add("server.gc_percent", "must be positive, or -1 to leave the garbage collector to GOGC/GOMEMLIMIT")
	}
	if s.StreamWorkers < -1 || s.StreamWorkers == 0 || s.StreamWorkers > MaxStreamWorkers {
		v.add("server.stream_workers", "must be between 1 and %d, or -1 for a new goroutine per stream (got %d)", MaxStreamWorkers, s.StreamWorkers)
	}
	if s.FailureMode != FailClosed && s.FailureMode != FailOpen {
		v.add("server.failure_mode", "must be %q or %q (got %q)", FailClosed, FailOpen, s.FailureMode)
	}
	l := s.Limits
	for path, n := range map[string]int{
		"server.limits.max_messages": l.MaxMessages, "server.limits.max_json_depth": l.MaxJSONDepth,
		"server.limits.max_classifier_chars": l.MaxClassifierChars, "server.limits.max_headers": l.MaxHeaders,
		"server.limits.max_header_bytes": l.MaxHeaderBytes,
	} {
		if n <= 0 {
			v.add(path, "must be positive")
		}
	}
	if e := s.Content.Encodings; e != "decode" && e != "reject" {
		v.add("server.content.encodings", "must be \"decode\" or \"reject\" (got %q)", e)
	}
	if s.Content.MaxDecodedBytes <= 0 {
		v.add("server.content.max_decoded_bytes", "must be positive")
	}
	if n := s.Content.NonJSON; n != "pass" && n != "reject" {
		v.add("server.content.non_json", "must be \"pass\" or \"reject\" (got %q)", n)
	}
	t := s.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add("server.tls", "cert_file and key_file must be set together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		v.add("server.tls.client_ca_file", "mTLS needs cert_file and key_file too")
	}
}

func checkAddr(v *validator, path, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		v.add(path, "%q is not host:port (example \":50051\")", addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "%q has an invalid port", addr)
	}
}

func (c *Config) validatePortfolio(v *validator) {
	if len(c.Providers) == 0 {
		v.add("providers", "at least one provider is required")
	}
	for _, name := range sortedKeys(c.Providers) {
		p := c.Providers[name]
		path := "providers." + name
		if !nameRE.MatchString(name) {
			v.add(path, "name must be lower-case letters, digits, '.', '_' or '-' (max 63)")
		}
		if p.Address == "" {
			v.add(path+".address", "is required (host:port)")
		} else if _, _, err := net.SplitHostPort(p.Address); err != nil {
			v.add(path+".address", "%q is not host:port", p.Address)
		}
		if p.PathPrefix != "" && !strings.HasPrefix(p.PathPrefix, "/") {
			v.add(path+".path_prefix", "must start with '/'")
		}
		a := p.Auth
		if a.SecretEnv != "" && a.SecretFile != "" {
			v.add(path+".auth", "set secret_env or secret_file, not both")
		}
		if a.Header != "" && !headerRE.MatchString(a.Header) {
			v.add(path+".auth.header", "%q is not a lower-case header name", a.Header)
		}
	}
	if len(c.Models) == 0 {
		v.add("models", "at least one model is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Models {
		path := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Name == "":
			v.add(path+".name", "is required")
		case !nameRE.MatchString(m.Name):
			v.add(path+".name", "%q must be lower-case letters, digits, '.', '_' or '-' (max 63)", m.Name)
		case seen[m.Name]:
			v.add(path+".name", "model %q is defined twice", m.Name)
		case m.Name == AutoModel:
			v.add(path+".name", "%q is reserved", AutoModel)
		}
		seen[m.Name] = true
		if m.Tier != TierFast && m.Tier != TierReasoning && m.Tier != TierSpecialist {
			v.add(path+".tier", "must be fast, reasoning or specialist (got %q)", m.Tier)
		}
		if _, ok := c.Providers[m.Provider]; !ok {
			v.add(path+".provider", "provider %q is not defined under providers", m.Provider)
		}
		if m.Address != "" {
			if _, _, err := net.SplitHostPort(m.Address); err != nil {
				v.add(path+".address", "%q is not host:port", m.Address)
			}
		}
		if m.Price.InputPerMTok < 0 || m.Price.OutputPerMTok < 0 {
			v.add(path+".price", "prices cannot be negative")
		}
		if m.ContextWindow < 0 {
			v.add(path+".context_window", "cannot be negative")
		}
	}
	if len(c.Targets) == 0 {
		v.add("targets", "at least one target is required")
	}
	for _, name := range sortedKeys(c.Targets) {
		t := c.Targets[name]
		path := "targets." + name
		if !nameRE.MatchString(name) || name == AutoModel {
			v.add(path, "target name must be lower-case letters, digits, '.', '_' or '-', and not %q", AutoModel)
		}
		if seen[name] {
			v.add(path, "target %q has the same name as a model; names must be unique across models and targets", name)
		}
		if len(t.Models) == 0 {
			v.add(path+".models", "a target needs at least one model")
		}
		dup := map[string]bool{}
		for i, m := range t.Models {
			if !seen[m] {
				v.add(fmt.Sprintf("%s.models[%d]", path, i), "model %q is not defined under models", m)
			}
			if dup[m] {
				v.add(fmt.Sprintf("%s.models[%d]", path, i), "model %q is listed twice", m)
			}
			dup[m] = true
		}
		if t.SLO <= 0 {
			v.add(path+".slo", "must be positive")
		}
		if t.Timeout < t.SLO {
			v.add(path+".timeout", "must be at least the slo (%s)", t.SLO)
		}
		if t.Retries != nil && (*t.Retries < 0 || *t.Retries > 10) {
			v.add(path+".retries", "must be between 0 and 10")
		}
		if j := t.Judge; j != nil {
			if len(t.Models) < 2 {
				v.add(path+".judge", "a cascade needs at least two models (the last answer is never judged)")
			}
			if lp := j.MinMeanLogprob; lp != nil && *lp > 0 {
				v.add(path+".judge.min_mean_logprob", "log-probabilities are <= 0 (got %g)", *lp)
			}
		}
	}
}

func (c *Config) validateRouting(v *validator) {
	r := c.Routing
	checkTarget := func(path, t string) {
		if _, ok := c.Targets[t]; !ok {
			v.add(path, "target %q is not defined under targets", t)
		}
	}
	if r.DefaultTarget == "" {
		v.add("routing.default_target", "is required")
	} else {
		checkTarget("routing.default_target", r.DefaultTarget)
	}
	for _, alias := range sortedKeys(r.Aliases) {
		t := r.Aliases[alias]
		if t != AutoModel {
			checkTarget("routing.aliases."+alias, t)
		}
	}
	known := map[string]bool{}
	for _, in := range Intents {
		known[in] = true
	}
	for _, in := range sortedKeys(r.Intents) {
		if !known[in] {
			v.add("routing.intents."+in, "unknown intent %q (known: %s)", in, strings.Join(Intents, ", "))
		}
		checkTarget("routing.intents."+in, r.Intents[in])
	}
	prev := 2.0
	for i, b := range r.Complexity {
		path := fmt.Sprintf("routing.complexity[%d]", i)
		if b.Above < 0 || b.Above >= 1 {
			v.add(path+".above", "must be in [0,1)")
		}
		if b.Above >= prev {
			v.add(path+".above", "bands must be listed from the highest threshold down")
		}
		prev = b.Above
		checkTarget(path+".target", b.Target)
	}
	for _, name := range sortedKeys(r.Keywords) {
		k := r.Keywords[name]
		path := "routing.keywords." + name
		if len(k.Patterns) == 0 {
			v.add(path+".patterns", "needs at least one pattern")
		}
		for i, p := range k.Patterns {
			if _, err := regexp.Compile(p); err != nil {
				v.add(fmt.Sprintf("%s.patterns[%d]", path, i), "bad regular expression: %v", err)
			}
		}
		if k.Target != "" {
			checkTarget(path+".target", k.Target)
		}
	}
}

func (c *Config) validateClassifier(v *validator) {
	cl := c.Classifier
	if cl.Mode != "embedded" && cl.Mode != "llm" {
		v.add("classifier.mode", "must be \"embedded\" or \"llm\" (got %q)", cl.Mode)
	}
	if cl.MinConfidence < 0 || cl.MinConfidence >= 1 {
		v.add("classifier.min_confidence", "must be in [0,1)")
	}
	validCacheSize(v, "classifier.cache_size", cl.CacheSize)
	validCacheSize(v, "signals.message_cache_size", c.Signals.MessageCacheSize)
	known := map[string]bool{}
	for _, in := range Intents {
		known[in] = true
	}
	for _, in := range sortedKeys(cl.Examples) {
		if !known[in] {
			v.add("classifier.examples."+in, "unknown intent %q (known: %s)", in, strings.Join(Intents, ", "))
		}
	}
	if cl.Mode == "llm" {
		if cl.LLM.Model == "" {
			v.add("classifier.llm.model", "is required when classifier.mode is llm")
		} else if c.model(cl.LLM.Model) == nil {
			v.add("classifier.llm.model", "model %q is not defined under models", cl.LLM.Model)
		}
		if cl.LLM.Timeout <= 0 || cl.LLM.Timeout.D() > 10*time.Second {
			v.add("classifier.llm.timeout", "must be between 1ns and 10s")
		}
	}
}

func (c *Config) validatePolicy(v *validator) {
	p := c.Policy
	if !strings.HasPrefix(p.Query, "data.") {
		v.add("policy.query", "must be a data reference such as %q", DefaultPolicyQuery)
	}
	if p.EvalTimeout <= 0 {
		v.add("policy.eval_timeout", "must be positive")
	}
	validCacheSize(v, "policy.decision_cache_size", p.DecisionCacheSize)
	if p.TenantHeader != "" && !headerRE.MatchString(p.TenantHeader) {
		v.add("policy.tenant_header", "%q is not a lower-case header name", p.TenantHeader)
	}
	for i, h := range p.SecretHeaders {
		if !headerRE.MatchString(h) {
			v.add(fmt.Sprintf("policy.secret_headers[%d]", i), "%q is not a lower-case header name", h)
		}
	}
}

func (c *Config) model(name string) *Model {
	for i := range c.Models {
		if c.Models[i].Name == name {
			return &c.Models[i]
		}
	}
	return nil
}

func setStr(p *string, d string) {
	if *p == "" {
		*p = d
	}
}

// validCacheSize checks a cache size key: -1 (off), 0 (default) or a size.
func validCacheSize(v *validator, key string, n int) {
	if n < -1 || n > MaxCacheSize {
		v.add(key, "must be -1 (off), 0 (default size) or a size up to %d (got %d)", MaxCacheSize, n)
	}
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setInt64(p *int64, d int64) {
	if *p == 0 {
		*p = d
	}
}

func setFloat(p *float64, d float64) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *Duration, d time.Duration) {
	if *p == 0 {
		*p = Duration(d)
	}
}
