package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard-llm/switchyard/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The reload closes the old router after a delay with time.AfterFunc.
		goleak.IgnoreAnyFunction("time.goFunc"))
}

func TestUsageAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if err := Main(context.Background(), nil, &out, &errb); !errors.Is(err, ErrUsage) {
		t.Errorf("no args: %v", err)
	}
	if !strings.Contains(out.String(), "serve") || !strings.Contains(out.String(), "replay") {
		t.Errorf("usage lists no commands: %s", out.String())
	}
	if err := Main(context.Background(), []string{"frobnicate"}, &out, &errb); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
	for _, cmd := range []string{"serve", "validate", "version", "explain", "replay", "envoy-config", "policy test"} {
		errb.Reset()
		args := append(strings.Fields(cmd), "--help")
		if err := Main(context.Background(), args, &out, &errb); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v", cmd, err)
		}
		if !strings.Contains(errb.String(), "Usage: switchyard "+cmd) {
			t.Errorf("%s --help printed %q", cmd, errb.String())
		}
	}
}

func TestValidate(t *testing.T) {
	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"validate"}, &out, &errb); err != nil || !strings.Contains(out.String(), "ok") {
		t.Errorf("embedded default: %v %s", err, out.String())
	}
	err := Main(context.Background(), []string{"validate", "../config/testdata/invalid/undefined-refs.yaml"}, &out, &errb)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("broken config: %v", err)
	}
	if !strings.Contains(err.Error(), "undefined-refs.yaml:5: models[0].provider") {
		t.Errorf("error does not name the key and line: %v", err)
	}
}

// writeConfig writes the default config with edits to a temp file.
func writeConfig(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	p := filepath.Join(dir, "switchyard.yaml")
	s := string(config.DefaultYAML())
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeLifecycle starts serve on ephemeral ports, checks health and
// readiness, reloads a good and a bad config, and shuts down on cancel.
func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, func(s string) string {
		return strings.Replace(s, "  strict_json: false", "  strict_json: false\n  reload_interval: 50ms\n  shutdown_grace: 2s", 1)
	})
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ grpc, admin net.Addr }
	started := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveFlags{config: cfgPath, grpcAddr: "127.0.0.1:0", adminAddr: "127.0.0.1:0"}, log,
			func(g, a net.Addr) { started <- addrs{g, a} })
	}()
	var a addrs
	select {
	case a = <-started:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.admin.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, _ := get("/healthz"); c != 200 {
		t.Errorf("/healthz = %d", c)
	}
	if c, _ := get("/readyz"); c != 200 {
		t.Errorf("/readyz = %d", c)
	}
	conn, err := grpc.NewClient(a.grpc.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: extprocv3.ExternalProcessor_ServiceDesc.ServiceName})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hc, err)
	}

	waitMetric := func(substr string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if _, body := get("/metrics"); strings.Contains(body, substr) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("metric %q never appeared", substr)
	}
	// A bad reload keeps serving and is counted.
	writeConfig(t, dir, func(s string) string { return strings.Replace(s, "default_target: fast", "default_target: nowhere", 1) })
	waitMetric(`switchyard_config_reload_total{kind="config",result="error"} 1`)
	if c, _ := get("/readyz"); c != 200 {
		t.Errorf("not ready after a bad reload")
	}
	// A good reload swaps.
	writeConfig(t, dir, func(s string) string {
		s = strings.Replace(s, "  strict_json: false", "  strict_json: false\n  reload_interval: 50ms\n  shutdown_grace: 2s", 1)
		return strings.Replace(s, "default_target: fast", "default_target: reasoning", 1)
	})
	waitMetric(`switchyard_config_reload_total{kind="config",result="success"} 1`)
	if logs.FilterMessage("reload failed; still serving the last good config").Len() != 1 {
		t.Errorf("bad reload not logged once")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if logs.FilterMessage("stopped").Len() != 1 {
		t.Error("no 'stopped' log")
	}
}

func TestServeBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	err := Main(context.Background(), []string{"serve", "--log-format", "xml"}, &out, &errb)
	if !errors.Is(err, ErrUsage) {
		t.Errorf("bad log format: %v", err)
	}
	err = Main(context.Background(), []string{"serve", "--config", "/nonexistent/x.yaml"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.yaml") {
		t.Errorf("missing config: %v", err)
	}
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	lines := []string{
		`{"model":"auto","messages":[{"role":"user","content":"hello there, how are you today?"}]}`,
		`not json at all`,
		``,
		`{"headers":{"x-tenant-id":"acme"},"body":{"model":"reasoning","max_tokens":100,"messages":[{"role":"user","content":"prove it"}]}}`,
		`{"model":"gpt-9","messages":[]}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"replay", "--in", in, "--workers", "3"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) != 4 {
		t.Fatalf("want 4 output lines (blank line skipped), got %d:\n%s", len(got), out.String())
	}
	wantPrefix := []string{`{"line":1,"target":"fast"`, `{"line":2,`, `{"line":4,"target":"reasoning"`, `{"line":5,"target":""`}
	for i, w := range wantPrefix {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("line %d = %s, want prefix %s", i, got[i], w)
		}
	}
	if !strings.Contains(got[1], `"error":"line is not valid JSON"`) || !strings.Contains(got[3], `"status":404`) {
		t.Errorf("errors not reported: %s / %s", got[1], got[3])
	}
	if !strings.Contains(got[2], `"est_output_tokens":100`) {
		t.Errorf("max_tokens not used for the output estimate: %s", got[2])
	}
	summary := errb.String()
	for _, w := range []string{"line 2: line is not valid JSON", "3 requests (1 denied, 1 malformed lines)", "by target:", "by tier:", "saved"} {
		if !strings.Contains(summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, summary)
		}
	}
}

func TestEnvoyConfigAndExplain(t *testing.T) {
	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"envoy-config"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Error("envoy-config output differs from the checked-in envoy/envoy.yaml")
	}
	body := filepath.Join(t.TempDir(), "b.json")
	if err := os.WriteFile(body, []byte(`{"model":"auto","messages":[{"role":"user","content":"my card is 4111 1111 1111 1111"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Main(context.Background(), []string{"explain", "-H", "x-tenant-id: acme", "-H", "authorization: Bearer sk-zzz", body}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, w := range []string{`"target": "onprem"`, `"type": "credit_card"`, `"tenant": "acme"`, `"rules_fired"`} {
		if !strings.Contains(s, w) {
			t.Errorf("explain output lacks %s:\n%s", w, s)
		}
	}
	if strings.Contains(s, "sk-zzz") || strings.Contains(s, "4111") {
		t.Error("explain output leaks a secret or the card number")
	}
}

// TestShutdownDrainsInFlight: SIGTERM (context cancel) while a request is
// half way through its ext_proc stream. The open stream still gets its
// answer, new streams are refused, and serve returns within the grace period.
func TestShutdownDrainsInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveFlags{grpcAddr: "127.0.0.1:0", adminAddr: "127.0.0.1:0"}, zap.NewNop(),
			func(g, _ net.Addr) { started <- g })
	}()
	var addr net.Addr
	select {
	case addr = <-started:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	stream, err := client.Process(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(testHeaders()); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}

	cancel() // SIGTERM
	// Wait until the server refuses new streams, then finish the old one.
	deadline := time.Now().Add(5 * time.Second)
	refused := false
	for time.Now().Before(deadline) && !refused {
		s2, err := client.Process(sctx)
		if err == nil {
			err = s2.Send(testHeaders())
			if err == nil {
				_, err = s2.Recv()
			}
		}
		refused = err != nil
		if !refused {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatal("new streams still served after shutdown began")
	}
	if err := stream.Send(testBody()); err != nil {
		t.Fatalf("in-flight stream cut: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("in-flight stream got no answer: %v", err)
	}
	if resp.GetRequestBody().GetResponse().GetHeaderMutation() == nil {
		t.Fatalf("in-flight answer has no routing: %v", resp)
	}
	_ = stream.CloseSend()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within the grace period")
	}
}

func testHeaders() *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
			{Key: "content-type", RawValue: []byte("application/json")}}}}}}
}

func testBody() *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
		Body: []byte(`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`), EndOfStream: true}}}
}
