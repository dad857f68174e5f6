// Package config holds Switchyard's configuration schema: the YAML file that
// describes providers, models, targets, routing and the server, its strict
// decoding, defaults and validation, and the immutable Snapshot compiled from
// it. The live snapshot is swapped whole (see Holder), never mutated.
package config

import (
	"time"
)

// Tiers a model can belong to.
const (
	TierFast       = "fast"
	TierReasoning  = "reasoning"
	TierSpecialist = "specialist"
)

// Failure modes for policy errors and undecidable requests.
const (
	FailClosed = "closed"
	FailOpen   = "open"
)

// AutoModel is the model name that always means "let Switchyard choose".
const AutoModel = "auto"

// Config is the whole configuration file. Field names are the YAML keys.
type Config struct {
	Version    int                 `yaml:"version"`
	Server     Server              `yaml:"server"`
	Providers  map[string]Provider `yaml:"providers"`
	Models     []Model             `yaml:"models"`
	Targets    map[string]Target   `yaml:"targets"`
	Routing    Routing             `yaml:"routing"`
	Classifier Classifier          `yaml:"classifier"`
	PII        PII                 `yaml:"pii"`
	Signals    Signals             `yaml:"signals"`
	Policy     Policy              `yaml:"policy"`
	Accounting Accounting          `yaml:"accounting"`
	Envoy      Envoy               `yaml:"envoy"`
}

// Server configures the listeners and the request limits.
type Server struct {
	GRPCAddr            string   `yaml:"grpc_addr"`
	AdminAddr           string   `yaml:"admin_addr"`
	MaxBodyBytes        int64    `yaml:"max_body_bytes"`
	GRPCMaxMessageBytes int      `yaml:"grpc_max_message_bytes"`
	FailureMode         string   `yaml:"failure_mode"`
	StrictJSON          bool     `yaml:"strict_json"`
	ShutdownGrace       Duration `yaml:"shutdown_grace"`
	// ReloadInterval is how often the config file and policy dirs are
	// checked for changes (default 1s).
	ReloadInterval Duration `yaml:"reload_interval"`
	// GCPercent is the Go garbage collector's GOGC for `serve` (default 400;
	// the GOGC environment variable wins). The live heap is about 10 MB and
	// short-lived garbage is most of the allocation, so a higher value
	// trades a few tens of MB of RSS for far less GC CPU (GC was 10% of the
	// server's CPU under load at 200). GOMEMLIMIT still bounds the heap.
	GCPercent int `yaml:"gc_percent"`
	// StreamWorkers is how many long-lived goroutines serve ext_proc
	// streams (default 64; -1: a new goroutine per stream, gRPC's
	// default). A stream's goroutine grows its stack during the decision
	// (policy evaluation recurses deeply); a fresh goroutine per stream
	// paid that growth every time (runtime.copystack, 3% of server CPU in
	// the 2 KB closed loop). Streams beyond the busy workers still get
	// their own goroutine. Read at start.
	StreamWorkers int       `yaml:"stream_workers"`
	Limits        Limits    `yaml:"limits"`
	Content       Content   `yaml:"content"`
	TLS           ServerTLS `yaml:"tls"`
}

// Limits bound the work one request can cause, enforced before any expensive step.
type Limits struct {
	MaxMessages        int `yaml:"max_messages"`
	MaxJSONDepth       int `yaml:"max_json_depth"`
	MaxClassifierChars int `yaml:"max_classifier_chars"`
	MaxHeaders         int `yaml:"max_headers"`
	MaxHeaderBytes     int `yaml:"max_header_bytes"`
}

// Content says what to do with request bodies that are not plain JSON.
type Content struct {
	// Encodings: "decode" (gzip, deflate, br within MaxDecodedBytes) or "reject" (415).
	Encodings       string `yaml:"encodings"`
	MaxDecodedBytes int64  `yaml:"max_decoded_bytes"`
	// NonJSON: "pass" (send to the default target, reason "unparsed") or "reject" (415).
	NonJSON string `yaml:"non_json"`
}

// ServerTLS turns on TLS (and mTLS with ClientCAFile) for the gRPC listener.
type ServerTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Provider is one vendor endpoint (OpenAI, an OpenAI-compatible vendor, or an on-prem server).
type Provider struct {
	Address string `yaml:"address"` // host:port
	TLS     bool   `yaml:"tls"`
	OnPrem  bool   `yaml:"onprem"`
	// Host overrides the Host/:authority sent upstream (default: host of Address).
	Host string `yaml:"host"`
	// PathPrefix replaces the leading "/v1" of the request path, for vendors
	// that serve the OpenAI API under another prefix (e.g. "/openai/v1").
	PathPrefix string `yaml:"path_prefix"`
	Auth       Auth   `yaml:"auth"`
}

// Auth says how the upstream role authenticates to a provider. The secret is
// read from SecretEnv or SecretFile at load time and never logged.
type Auth struct {
	Header     string `yaml:"header"`
	Prefix     string `yaml:"prefix"`
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
}

// Model is one deployment of one model at one provider.
type Model struct {
	Name          string `yaml:"name"`
	Tier          string `yaml:"tier"`
	Provider      string `yaml:"provider"`
	UpstreamModel string `yaml:"upstream_model"`
	// Address overrides the provider address for this model (host:port).
	Address       string `yaml:"address"`
	Price         Price  `yaml:"price"`
	ContextWindow int    `yaml:"context_window"`
	// OnPrem marks the model as on-premises; it is also true when its provider is.
	OnPrem bool `yaml:"onprem"`
}

// Price is USD per million tokens.
type Price struct {
	InputPerMTok  float64 `yaml:"input_per_mtok"`
	OutputPerMTok float64 `yaml:"output_per_mtok"`
}

// Target is what Envoy routes to: an ordered list of models, tried in order.
type Target struct {
	Models []string `yaml:"models"`
	// SLO is the per-try latency budget (Envoy per_try_timeout).
	SLO Duration `yaml:"slo"`
	// Timeout is the whole request budget across tries (Envoy route timeout);
	// default SLO × number of models + 1s.
	Timeout Duration `yaml:"timeout"`
	// Retries is the number of retries (default: len(models)-1, at least 1).
	Retries *int   `yaml:"retries"`
	Judge   *Judge `yaml:"judge"`
}

// Judge turns a target into a cascade: answers from every model but the last
// are checked and a failed check escalates to the next model.
type Judge struct {
	JSON           bool     `yaml:"json"`
	Schema         bool     `yaml:"schema"`
	MinMeanLogprob *float64 `yaml:"min_mean_logprob"`
	Refusal        bool     `yaml:"refusal"`
	Empty          bool     `yaml:"empty"`
	Truncated      bool     `yaml:"truncated"`
}

// Routing is the routing table that makes the proposal the policy decides on.
type Routing struct {
	DefaultTarget string `yaml:"default_target"`
	// Aliases maps request model names to a target name or "auto".
	Aliases map[string]string `yaml:"aliases"`
	// Intents maps an intent to a target.
	Intents map[string]string `yaml:"intents"`
	// Complexity bands, checked in order after intents; the first band whose
	// Above is below the score wins.
	Complexity []ComplexityBand `yaml:"complexity"`
	// Keywords are named pattern lists that raise a signal.
	Keywords map[string]KeywordRule `yaml:"keywords"`
}

// ComplexityBand sends requests whose complexity is above a score to a target.
type ComplexityBand struct {
	Above  float64 `yaml:"above"`
	Target string  `yaml:"target"`
}

// KeywordRule is a list of regular expressions; any match raises Signal
// (default: the rule's name). Target, if set, routes matching requests.
type KeywordRule struct {
	Patterns []string `yaml:"patterns"`
	Signal   string   `yaml:"signal"`
	Target   string   `yaml:"target"`
}

// Classifier configures intent classification.
type Classifier struct {
	Mode          string              `yaml:"mode"` // embedded | llm
	MinConfidence float64             `yaml:"min_confidence"`
	ExamplesFile  string              `yaml:"examples_file"`
	Examples      map[string][]string `yaml:"examples"`
	CacheSize     int                 `yaml:"cache_size"` // intent cache entries (0: the default, -1: off)
	LLM           LLMClassifier       `yaml:"llm"`
}

// LLMClassifier configures the optional fast-LLM classifier.
type LLMClassifier struct {
	// Model is a model of the portfolio; its provider's address and auth are used.
	Model string `yaml:"model"`
	// Endpoint overrides the URL (e.g. http://127.0.0.1:8000/v1/chat/completions).
	Endpoint      string   `yaml:"endpoint"`
	Timeout       Duration `yaml:"timeout"`
	Breaker       Breaker  `yaml:"breaker"`
	CAFile        string   `yaml:"ca_file"`
	InsecureHTTP  bool     `yaml:"insecure_http"`
	MaxConcurrent int      `yaml:"max_concurrent"`
}

// Breaker is a consecutive-failure circuit breaker.
type Breaker struct {
	Failures int      `yaml:"failures"`
	CoolDown Duration `yaml:"cool_down"`
}

// Signals configures the signal pass shared by all classifiers.
type Signals struct {
	// MessageCacheSize bounds the per-message scan cache: complexity, PII
	// and injection results of one message, keyed by its text (0: the
	// default, -1: off).
	MessageCacheSize int `yaml:"message_cache_size"`
}

// PII selects the detectors that run (empty: all).
type PII struct {
	Types []string `yaml:"types"`
}

// Policy configures the embedded OPA engine.
type Policy struct {
	// Dirs are directories of .rego and data files; empty means the shipped policies.
	Dirs         []string `yaml:"dirs"`
	Query        string   `yaml:"query"`
	EvalTimeout  Duration `yaml:"eval_timeout"`
	TenantHeader string   `yaml:"tenant_header"`
	// SecretHeaders are removed (with authorization, proxy-authorization,
	// cookie and x-api-key) before headers reach policy, logs or decisions.
	SecretHeaders []string       `yaml:"secret_headers"`
	Data          map[string]any `yaml:"data"`
	// DecisionCacheSize bounds the decision cache (0: the default 4096, -1: off).
	DecisionCacheSize int `yaml:"decision_cache_size"`
	// DecisionLog writes one structured line per decision.
	DecisionLog bool `yaml:"decision_log"`
	// DebugUnredacted puts prompt text into the decision log. Never in production.
	DebugUnredacted bool `yaml:"debug_unredacted"`
}

// Accounting configures token and cost accounting.
type Accounting struct {
	Enabled       bool   `yaml:"enabled"`
	BaselineModel string `yaml:"baseline_model"`
	CostHeader    bool   `yaml:"cost_header"`
}

// Envoy holds settings used only by `switchyard envoy-config`.
type Envoy struct {
	ListenerPort    int      `yaml:"listener_port"`
	AdminPort       int      `yaml:"admin_port"`
	SwitchyardAddr  string   `yaml:"switchyard_addr"` // host:port Envoy dials for ext_proc
	MessageTimeout  Duration `yaml:"message_timeout"`
	RetriableStatus []int    `yaml:"retriable_status_codes"`
	Outlier         Outlier  `yaml:"outlier"`
}

// Outlier configures Envoy outlier detection for target clusters.
type Outlier struct {
	Consecutive5xx            int      `yaml:"consecutive_5xx"`
	ConsecutiveGatewayFailure int      `yaml:"consecutive_gateway_failure"`
	BaseEjectionTime          Duration `yaml:"base_ejection_time"`
	Interval                  Duration `yaml:"interval"`
	MaxEjectionPercent        int      `yaml:"max_ejection_percent"`
}

// Duration is a time.Duration that decodes from Go duration strings ("150ms", "5s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
