package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/extproc"
	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/envoyconf"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
	"github.com/switchyard-llm/switchyard/test/envoysim"
	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Provider secrets (set with t.Setenv, read by config.Compile) and the key
// the client sends to the gateway, which must never reach a vendor.
const (
	vendorAKey = "sk-e2e-vendor-a-7f3c"
	vendorBKey = "sk-e2e-vendor-b-91d2"
	clientKey  = "sk-e2e-client-must-not-leak"
)

// Edits applied to the embedded default config for the whole suite.
var suiteEdits = []edit{
	// Strict mode: a body that is not valid JSON is a 400 (issue 3).
	{`strict_json: \S+`, "strict_json: true"},
	// The default policy deadline is a production latency bound; OPA under
	// the race detector on a shared 2-core machine measured 7-10 ms for a
	// cold evaluation, and a deadline miss is a policy_unavailable 503 that
	// no test is about. Raising it changes no decision.
	{`eval_timeout: \S+`, "eval_timeout: 2s"},
}

// edit replaces the one match of a regular expression in the config YAML.
type edit struct{ pattern, repl string }

func editConfig(t testing.TB, edits ...edit) []byte {
	t.Helper()
	y := config.DefaultYAML()
	for _, e := range edits {
		re := regexp.MustCompile(e.pattern)
		if n := len(re.FindAllIndex(y, -1)); n != 1 {
			t.Fatalf("config edit: %q matches %d times in the default config", e.pattern, n)
		}
		y = re.ReplaceAllLiteral(y, []byte(e.repl))
	}
	return y
}

func compile(t testing.TB, yaml []byte) *config.Snapshot {
	t.Helper()
	cfg, err := config.Parse(yaml, "e2e-config.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	snap, err := config.Compile(cfg, "e2e-config.yaml")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return snap
}

// harness is one in-process Switchyard (gRPC ext_proc + admin listener),
// one fake provider per configured provider, and envoysim on the checked-in
// envoy/envoy.yaml.
type harness struct {
	t         *testing.T
	snap      *config.Snapshot
	metrics   *telemetry.Metrics
	grpcAddr  string
	adminURL  string
	providers map[string]*fakeprovider.Server // by provider name
	sim       *sim                            // envoysim on envoy/envoy.yaml
	srv       *extproc.Server                 // the ext_proc server (Swap for reload tests)
	hc        *http.Client
	client    openai.Client // SDK pointed at sim
}

// startHarness builds Switchyard like internal/cli serve does: route.Build
// → extproc.New → extproc.NewGRPCServer on a loopback listener, plus the
// admin listener for /metrics. The caller sets the provider secrets with
// t.Setenv before.
func startHarness(t *testing.T) *harness {
	t.Helper()
	return startHarnessYAML(t, editConfig(t, suiteEdits...))
}

// startHarnessYAML is startHarness on a given Switchyard config (the fault
// suite builds its own: LLM classifier, policy dirs, lower limits). The
// Envoy side is always the checked-in envoy/envoy.yaml.
func startHarnessYAML(t *testing.T, yaml []byte) *harness {
	t.Helper()
	h := &harness{t: t, snap: compile(t, yaml), metrics: telemetry.NewMetrics(), providers: map[string]*fakeprovider.Server{}}
	log := zap.NewNop()
	if os.Getenv("E2E_LOG") != "" {
		log, _ = zap.NewDevelopment()
	}
	rt, err := route.Build(context.Background(), h.snap, log, h.metrics)
	if err != nil {
		t.Fatalf("route.Build: %v", err)
	}
	srv := extproc.New(rt, log, h.metrics)
	h.srv = srv
	gs, err := extproc.NewGRPCServer(srv, h.snap.Config.Server)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := telemetry.NewAdmin("127.0.0.1:0", h.metrics, log, false)
	if err != nil {
		t.Fatal(err)
	}
	h.grpcAddr, h.adminURL = lis.Addr().String(), "http://"+admin.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = gs.Serve(lis) }()
	go func() { defer wg.Done(); _ = admin.Serve() }()
	admin.SetReady(true)
	t.Cleanup(func() {
		// As serve's shutdown: stop taking streams, let open ones finish.
		gs.Health.Shutdown()
		srv.Drain()
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			gs.Stop()
			<-done
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = admin.Shutdown(ctx)
		cancel()
		wg.Wait()
		srv.Router().Close()
	})

	for name := range h.snap.Config.Providers {
		p := fakeprovider.New(name, fakeprovider.Script{})
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		h.providers[name] = p
	}

	envoyYAML, err := os.ReadFile(filepath.Join(repoRoot(t), "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h.sim = h.startSim(envoyYAML)

	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	h.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	h.client = h.clientFor(h.sim)
	return h
}

// with is the harness for a subtest: helpers fail t, and sims it starts
// are closed when t ends.
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// clientFor is the official SDK pointed at an envoysim, with SDK retries off
// so every request the test makes is exactly one request to the gateway.
func (h *harness) clientFor(s *sim) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(s.url+"/v1/"),
		option.WithAPIKey(clientKey),
		option.WithHTTPClient(h.hc),
		option.WithMaxRetries(0),
	)
}

// sim is one envoysim instance with its access log and outlier clock.
type sim struct {
	env   *envoysim.Envoy
	url   string
	clock *fakeClock
	logs  *logStore
}

// startSim loads an Envoy bootstrap and points its addresses at the
// in-process Switchyard and the fake providers (TLS endpoints are dialled
// in plaintext, retry back-off shrunk to 1 ms).
func (h *harness) startSim(bootstrap []byte) *sim {
	t := h.t
	t.Helper()
	cfg, err := envoysim.Load(bootstrap)
	if err != nil {
		t.Fatalf("envoysim.Load: %v", err)
	}
	ov := map[string]string{h.snap.Config.Envoy.SwitchyardAddr: h.grpcAddr}
	for _, m := range h.snap.Models() {
		ov[m.Addr] = h.providers[m.ProviderName].Addr()
	}
	s := &sim{clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}, logs: newLogStore()}
	s.env, err = envoysim.New(cfg, envoysim.Options{
		AddressOverrides: ov,
		PlaintextTLS:     true,
		RetryBackOffBase: time.Millisecond,
		Clock:            s.clock.now,
		AccessLog:        s.logs.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.url = "http://" + addr
	t.Cleanup(func() {
		if err := s.env.Close(); err != nil {
			t.Errorf("envoysim Close: %v", err)
		}
	})
	return s
}

// simFor renders the Envoy bootstrap of an edited config with the
// generator (envoyconf.Bootstrap + Render, as `switchyard envoy-config`
// does) and starts an envoysim on it. Switchyard keeps running the suite
// config: the edits used here (SLOs) only change Envoy's side.
func (h *harness) simFor(edits ...edit) *sim {
	h.t.Helper()
	snap := compile(h.t, editConfig(h.t, append(append([]edit(nil), suiteEdits...), edits...)...))
	b, err := envoyconf.Bootstrap(snap)
	if err != nil {
		h.t.Fatal(err)
	}
	y, err := envoyconf.Render(b, "yaml")
	if err != nil {
		h.t.Fatal(err)
	}
	return h.startSim(y)
}

// reset gives every provider a script (default: answer "Hello from <name>.")
// and forgets what they received.
func (h *harness) reset(scripts map[string]fakeprovider.Script) {
	for name, p := range h.providers {
		p.SetScript(scripts[name])
		p.Reset()
	}
}

// heal un-ejects every host of a sim and clears consecutive-failure counts:
// the outlier clock jumps past any ejection, then one successful request
// per target resets the counters of the hosts it reaches (Envoy resets them
// on success). Providers must answer 200 when it runs.
func (h *harness) heal(s *sim) {
	h.t.Helper()
	s.clock.add(time.Hour)
	for _, target := range []string{"reasoning", "fast"} {
		r := h.raw(s, http.MethodPost, "/v1/chat/completions", chatBody(target, "ping"), nil)
		if r.status != 200 {
			h.t.Fatalf("heal %s: %d %s", target, r.status, r.body)
		}
	}
	h.reset(nil)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logStore hands out envoysim access-log entries by request id; an entry
// is written after the response, so readers wait for it.
type logStore struct {
	mu   sync.Mutex
	byID map[string]chan envoysim.AccessLogEntry
	all  []envoysim.AccessLogEntry
}

func newLogStore() *logStore { return &logStore{byID: map[string]chan envoysim.AccessLogEntry{}} }

func (s *logStore) ch(id string) chan envoysim.AccessLogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[id]
	if !ok {
		c = make(chan envoysim.AccessLogEntry, 1)
		s.byID[id] = c
	}
	return c
}

func (s *logStore) add(e envoysim.AccessLogEntry) {
	s.mu.Lock()
	s.all = append(s.all, e)
	s.mu.Unlock()
	select {
	case s.ch(e.RequestID) <- e:
	default: // a repeated id; the first entry wins
	}
}

func (s *logStore) wait(t testing.TB, id string) envoysim.AccessLogEntry {
	t.Helper()
	select {
	case e := <-s.ch(id):
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("no access log entry for request %s", id)
	}
	return envoysim.AccessLogEntry{}
}

func (s *logStore) entries() []envoysim.AccessLogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]envoysim.AccessLogEntry(nil), s.all...)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "e2e-" + hex.EncodeToString(b[:])
}

// chatBody is a minimal chat request for a model with one user message.
func chatBody(model, prompt string) string {
	var b bytes.Buffer
	b.WriteString(`{"model":`)
	b.WriteString(jsonString(model))
	b.WriteString(`,"messages":[{"role":"user","content":`)
	b.WriteString(jsonString(prompt))
	b.WriteString(`}]}`)
	return b.String()
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteString(hex.EncodeToString([]byte{byte(r)}))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// rawResp is a response read with net/http, with its access-log entry.
type rawResp struct {
	status int
	header http.Header
	body   string
	log    envoysim.AccessLogEntry
}

// raw sends one request to a sim with the client key and a fresh request id
// and waits for its access-log entry.
func (h *harness) raw(s *sim, method, path, body string, hdr map[string]string) rawResp {
	h.t.Helper()
	return h.rawBytes(s, method, path, []byte(body), hdr)
}

// sdkCall is one SDK chat completion with its HTTP response and access log.
type sdkCall struct {
	out  *openai.ChatCompletion
	resp *http.Response
	err  error
	log  envoysim.AccessLogEntry
}

func (h *harness) chat(s *sim, params openai.ChatCompletionNewParams, opts ...option.RequestOption) sdkCall {
	h.t.Helper()
	id := newID()
	var c sdkCall
	opts = append(opts, option.WithHeader("X-Request-Id", id), option.WithResponseInto(&c.resp))
	cl := h.client
	if s != h.sim {
		cl = h.clientFor(s)
	}
	c.out, c.err = cl.Chat.Completions.New(context.Background(), params, opts...)
	c.log = s.logs.wait(h.t, id)
	return c
}

func userChat(model, prompt string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
}

// apiError unwraps the SDK's error for an HTTP error response.
func apiError(t testing.TB, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *openai.Error, got %T %v", err, err)
	}
	return e
}

// ---- metrics ----

// metrics is one /metrics scrape.
type metrics map[string]*dto.MetricFamily

func (h *harness) scrape() metrics {
	h.t.Helper()
	resp, err := h.hc.Get(h.adminURL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		h.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sum adds the values (counter, gauge or untyped) of a family's series whose
// labels include every label in match.
func (m metrics) sum(name string, match map[string]string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, s := range f.GetMetric() {
		ok := true
		for k, v := range match {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		switch {
		case s.GetCounter() != nil:
			total += s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			total += s.GetGauge().GetValue()
		case s.GetUntyped() != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}

// by groups a family's values by one label, for series matching match.
func (m metrics) by(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	f := m[name]
	if f == nil {
		return out
	}
	for _, s := range f.GetMetric() {
		labels := map[string]string{}
		for _, lp := range s.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range match {
			if labels[k] != v {
				ok = false
				break
			}
		}
		if ok && s.GetCounter() != nil {
			out[labels[label]] += s.GetCounter().GetValue()
		}
	}
	return out
}

// delta is after - before for one series sum.
func delta(before, after metrics, name string, match map[string]string) float64 {
	return after.sum(name, match) - before.sum(name, match)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9+1e-9*math.Abs(b) }

// price is what Switchyard's price table says usage costs on a model.
func (h *harness) price(modelName string, in, out int) float64 {
	m, ok := h.snap.Model(modelName)
	if !ok {
		h.t.Fatalf("no model %q", modelName)
	}
	return float64(in)*m.Price.InputPerMTok/1e6 + float64(out)*m.Price.OutputPerMTok/1e6
}
