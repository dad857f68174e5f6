package extproc

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// TestSecretsNeverLeak runs allowed, denied and upstream requests carrying
// secrets — the client's authorization header and API key, a cookie, a
// provider key from the environment, a credential inside the prompt — with
// debug logging and the decision log on, and greps everything Switchyard
// emits except the one place a provider key belongs (the upstream request's
// auth header): logs, metrics, decision headers, dynamic metadata, bodies.
func TestSecretsNeverLeak(t *testing.T) {
	const providerKey = "sk-provider-secret-5b1e"
	secrets := []string{"client-bearer-9d2c", "x-api-key-77aa", "cookie-value-31f0", providerKey,
		"AKIAIOSFODNN7EXAMPLE", "4111111111111111"}
	t.Setenv("VENDOR_A_API_KEY", providerKey)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	m := telemetry.NewMetrics()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy.DecisionLog = true
	snap, err := config.Compile(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := route.Build(t.Context(), snap, log, m)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s := New(rt, log, m)

	clientHdrs := []string{"authorization", "Bearer client-bearer-9d2c", "x-api-key", "x-api-key-77aa", "cookie", "cookie-value-31f0"}
	var out strings.Builder
	dump := func(sent []*extprocv3ProcessingResponse) {
		for _, r := range sent {
			b, _ := protojson.Marshal(r)
			out.Write(b)
		}
	}
	// Allowed, with PII (goes on-prem).
	dump(run(t, s, chatHeaders(clientHdrs...), reqBody(`{"model":"auto","messages":[{"role":"user","content":"charge card 4111111111111111 please"}]}`), respHeaders("200")))
	// Denied: a credential in the prompt.
	dump(run(t, s, chatHeaders(clientHdrs...), reqBody(`{"model":"auto","messages":[{"role":"user","content":"my key is AKIAIOSFODNN7EXAMPLE"}]}`)))
	// Upstream attempt: the provider key is set on the upstream request only.
	up := run(t, s, upstreamFirst(t, "small-a", "target-fast", clientHdrs...), reqBody(hiBody), respHeaders("200"))
	if got := setHeaders(t, up[0].GetRequestHeaders().GetResponse().GetHeaderMutation())["authorization"]; got != "Bearer "+providerKey {
		t.Fatalf("provider key not set upstream: %q", got)
	}
	dump(up[1:])

	var emitted strings.Builder
	emitted.WriteString(out.String())
	for _, e := range logs.All() {
		emitted.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			emitted.WriteString(k)
			emitted.WriteString(strings.ReplaceAll(toString(v), "\n", " "))
		}
	}
	mfs, _ := m.Registry.Gather()
	for _, mf := range mfs {
		emitted.WriteString(mf.String())
	}
	if logs.FilterMessage("decision").Len() < 2 {
		t.Fatalf("decision log not written (%d lines)", logs.FilterMessage("decision").Len())
	}
	for _, sec := range secrets {
		if strings.Contains(emitted.String(), sec) {
			t.Errorf("secret %q leaked", sec)
		}
	}
}
