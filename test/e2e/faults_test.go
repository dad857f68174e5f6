package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/envoyconf"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

// ---- helpers shared by the fault tests ----

// result is one client request's outcome: exactly one per request sent.
type result struct {
	status int
	header http.Header
	body   string
	err    error
	took   time.Duration
}

// try sends one request without failing the test (for worker goroutines).
func (h *harness) try(ctx context.Context, s *sim, body string, hdr map[string]string) result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("X-Request-Id", newID())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err, took: time.Since(start)}
}

// noPanics fails the test if Switchyard recovered a panic.
func (h *harness) noPanics() {
	h.t.Helper()
	if n := h.scrape().sum("switchyard_panics_recovered_total", nil); n != 0 {
		h.t.Fatalf("%v panics recovered", n)
	}
}

// streamsIdle waits (bounded) until switchyard_streams_active is 0.
func (h *harness) streamsIdle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := h.scrape().sum("switchyard_streams_active", nil)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("switchyard_streams_active = %v, not back to 0", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// swap builds a router for yaml (reusing the running one's classifier) and
// swaps it in, as the reloader does; the old router is closed at cleanup.
func (h *harness) swap(yaml []byte) {
	h.t.Helper()
	snap := compile(h.t, yaml)
	rt, err := route.Rebuild(context.Background(), snap, zap.NewNop(), h.metrics, h.srv.Router())
	if err != nil {
		h.t.Fatalf("rebuild: %v", err)
	}
	old := h.srv.Swap(rt)
	h.t.Cleanup(old.Close)
}

func suiteWith(t testing.TB, edits ...edit) []byte {
	return editConfig(t, append(append([]edit(nil), suiteEdits...), edits...)...)
}

// ---- the LLM classifier slow, down, returning garbage ----

// fakeClassifier is an OpenAI-compatible endpoint for classifier.llm.
type fakeClassifier struct {
	mode  atomic.Value // "slow" | "500" | "garbage" | "ok"
	calls atomic.Int64
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
}

func startFakeClassifier(t *testing.T) *fakeClassifier {
	f := &fakeClassifier{done: make(chan struct{})}
	f.mode.Store("ok")
	var err error
	if f.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		switch f.mode.Load().(string) {
		case "slow": // far beyond classifier.llm.timeout; ends when the client gives up
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
			}
		case "500":
			http.Error(w, `{"error":{"message":"boom","type":"server_error"}}`, 500)
			return
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"I think it is probably code?? <html>"}}]}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"{\"intent\":\"chitchat\",\"confidence\":0.9}"}}]}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { defer close(f.done); _ = f.srv.Serve(f.ln) }()
	t.Cleanup(func() { _ = f.srv.Close(); <-f.done })
	return f
}

// TestFaultLLMClassifier: with classifier.mode llm, an LLM classifier that
// is slow (beyond classifier.llm.timeout), answers 500 or answers garbage
// never fails a request: the embedded classifier answers instead, and after
// breaker.failures failures the breaker opens and the endpoint is no longer
// called.
func TestFaultLLMClassifier(t *testing.T) {
	t.Setenv("VENDOR_A_API_KEY", vendorAKey)
	t.Setenv("VENDOR_B_API_KEY", vendorBKey)
	fc := startFakeClassifier(t)
	const failures = 3
	cfgFor := func() []byte {
		return suiteWith(t, edit{`mode: embedded\s.*`, fmt.Sprintf(
			"mode: llm\n  llm: {model: small-a, endpoint: %q, insecure_http: true, timeout: 80ms, breaker: {failures: %d, cool_down: 10m}}",
			"http://"+fc.ln.Addr().String()+"/v1/chat/completions", failures)})
	}
	h := startHarnessYAML(t, cfgFor())
	if h.snap.Config.Classifier.Mode != "llm" {
		t.Fatal("classifier.mode is not llm")
	}
	// Sanity: a healthy LLM classifier is used.
	fc.mode.Store("ok")
	before := h.scrape()
	if r := h.try(context.Background(), h.sim, chatBody("auto", "good morning, lovely day for a walk"), nil); r.err != nil || r.status != 200 {
		t.Fatalf("healthy: %v %d %s", r.err, r.status, r.body)
	}
	if d := delta(before, h.scrape(), "switchyard_classifier_requests_total", map[string]string{"source": "llm"}); d != 1 {
		t.Fatalf("healthy LLM classifier used %v times, want 1", d)
	}

	for i, tc := range []struct{ mode, result string }{{"slow", "timeout"}, {"500", "status"}, {"garbage", "garbage"}} {
		t.Run(tc.mode, func(t *testing.T) {
			h := h.with(t)
			if i > 0 { // a fresh router: a closed breaker
				h.swap(cfgFor())
			}
			fc.mode.Store(tc.mode)
			calls0 := fc.calls.Load()
			before := h.scrape()
			const n = 8
			for j := 0; j < n; j++ {
				// Distinct prompts: the intent cache never answers.
				r := h.try(context.Background(), h.sim, chatBody("auto", fmt.Sprintf("%s request %d: what is a nice name for a cat?", tc.mode, j)), nil)
				if r.err != nil || r.status != 200 || r.header.Get("X-Switchyard-Target") == "" {
					t.Fatalf("request %d: %v %d %.200s", j, r.err, r.status, r.body)
				}
				if r.took > 3*time.Second {
					t.Fatalf("request %d took %v", j, r.took)
				}
			}
			after := h.scrape()
			src := func(s string) float64 {
				return delta(before, after, "switchyard_classifier_requests_total", map[string]string{"source": s})
			}
			if src("embedded") != n || src("llm") != 0 {
				t.Errorf("classified by embedded %v, llm %v; want %d, 0", src("embedded"), src("llm"), n)
			}
			res := func(s string) float64 {
				return delta(before, after, "switchyard_llm_classifier_calls_total", map[string]string{"result": s})
			}
			if res(tc.result) != failures || res("breaker_open") != n-failures {
				t.Errorf("llm calls: %s %v, breaker_open %v; want %d, %d", tc.result, res(tc.result), res("breaker_open"), failures, n-failures)
			}
			if got := fc.calls.Load() - calls0; got != failures {
				t.Errorf("the classifier endpoint was called %d times, want %d (breaker open after)", got, failures)
			}
			if g := after.sum("switchyard_llm_classifier_breaker_open", nil); g != 1 {
				t.Errorf("switchyard_llm_classifier_breaker_open = %v", g)
			}
		})
	}
	h.noPanics()
	h.streamsIdle()
}

// ---- a policy that loops or errors ----

const loopingPolicy = `package switchyard

# Reads the input first, so nothing can be precomputed at load; then
# iterates 25 million pairs that never match.
slow := [1 |
	input.request.model != ""
	some i in numbers.range(1, 5000)
	some j in numbers.range(1, 5000)
	i + j < 0
]

decision := {"allow": true, "target": "fast"} if count(slow) == 0
`

const conflictingPolicy = `package switchyard

# Two complete definitions with different values: an eval_conflict_error
# at evaluation time, for every request.
decision := {"allow": true, "target": "fast"} if input.request.model != ""

decision := {"allow": true, "target": "reasoning"} if input.request.method != ""
`

func policyDir(t *testing.T, src string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFaultPolicy: a policy that runs past policy.eval_timeout fails closed
// (503 policy_unavailable) or, with failure_mode open, routes on the
// proposal; a policy with a runtime error (conflicting outputs) is a 503.
func TestFaultPolicy(t *testing.T) {
	t.Setenv("VENDOR_A_API_KEY", vendorAKey)
	t.Setenv("VENDOR_B_API_KEY", vendorBKey)
	loop, conflict := policyDir(t, loopingPolicy), policyDir(t, conflictingPolicy)
	cfg := func(dir, mode string) []byte {
		return editConfig(t,
			edit{`strict_json: \S+`, "strict_json: true"},
			edit{`eval_timeout: \S+`, "eval_timeout: 100ms"},
			edit{`dirs: \[\]`, "dirs: [" + dir + "]"},
			edit{`failure_mode: \S+`, "failure_mode: " + mode})
	}
	h := startHarnessYAML(t, cfg(loop, "closed"))
	send := func(h *harness, n int, want int, code string) {
		h.t.Helper()
		before := h.scrape()
		for i := 0; i < n; i++ {
			r := h.try(context.Background(), h.sim, chatBody("auto", fmt.Sprintf("hello number %d", i)), nil)
			if r.err != nil || r.status != want {
				h.t.Fatalf("request %d: %v %d, want %d; %.200s", i, r.err, r.status, want, r.body)
			}
			if code != "" && !strings.Contains(r.body, `"code":"`+code+`"`) {
				h.t.Fatalf("request %d: want code %s: %s", i, code, r.body)
			}
			// eval_timeout 100 ms + signals; a request must not wait for the loop.
			if r.took > 2*time.Second {
				h.t.Fatalf("request %d took %v", i, r.took)
			}
		}
		if d := delta(before, h.scrape(), "switchyard_policy_errors_total", nil); d != float64(n) {
			h.t.Errorf("policy errors counted %v, want %d", d, n)
		}
	}
	t.Run("LoopFailsClosed", func(t *testing.T) {
		h := h.with(t)
		before := h.scrape()
		send(h, 4, 503, "policy_unavailable")
		if d := delta(before, h.scrape(), "switchyard_policy_errors_total", map[string]string{"kind": "timeout"}); d != 4 {
			t.Errorf("timeouts counted %v, want 4", d)
		}
	})
	t.Run("LoopFailsOpen", func(t *testing.T) {
		h := h.with(t)
		h.swap(cfg(loop, "open"))
		send(h, 4, 200, "")
	})
	t.Run("ConflictFailsClosed", func(t *testing.T) {
		h := h.with(t)
		h.swap(cfg(conflict, "closed"))
		send(h, 4, 503, "policy_unavailable")
	})
	h.noPanics()
	h.streamsIdle()
}

// ---- reloads under load, cancelled streams, SIGTERM (suite config) ----

// TestFaultSuite runs the load-bearing faults against one harness on the
// suite config.
func TestFaultSuite(t *testing.T) {
	t.Setenv("VENDOR_A_API_KEY", vendorAKey)
	t.Setenv("VENDOR_B_API_KEY", vendorBKey)
	h := startHarness(t)
	// Reloads and cancellations run against a sim whose ext_proc
	// message_timeout is 2 s (bootstrap rendered from the suite config with
	// envoy.message_timeout edited, as `switchyard envoy-config` does): the
	// 200 ms production bound is a latency budget, and a policy compile
	// under -race on a loaded 2-core machine starves the decision past it —
	// a 504 that is about CPU, not about a lost request.
	snap := compile(t, editConfig(t, suiteEdits...))
	snap.Config.Envoy.MessageTimeout = config.Duration(2 * time.Second)
	b, err := envoyconf.Bootstrap(snap)
	if err != nil {
		t.Fatal(err)
	}
	y, err := envoyconf.Render(b, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	h.sim = h.startSim(y)
	if os.Getenv("FAULT_SKIP_RELOAD") == "" {
		t.Run("ReloadUnderLoad", func(t *testing.T) { testReloadUnderLoad(t, h.with(t)) })
	}
	t.Run("ClientCancels", func(t *testing.T) { testClientCancels(t, h.with(t)) })
	t.Run("SIGTERMDuringLoad", func(t *testing.T) { testSIGTERM(t, h.with(t)) })
	h.noPanics()
}

// testReloadUnderLoad: 8 workers send requests while the config file is
// rewritten (good and bad versions, config and policy) and reloaded through
// route.Reload + Server.Swap, the path internal/cli's reloader takes. Every
// request is answered 200.
func testReloadUnderLoad(t *testing.T, h *harness) {
	h.reset(nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "switchyard.yaml")
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"governance.rego", "routing.rego"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(polDir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	badPolDir := filepath.Join(dir, "badpolicies")
	if err := os.MkdirAll(badPolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badPolDir, "x.rego"), []byte("package switchyard\n\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	versions := []struct {
		yaml []byte
		ok   bool
	}{
		{suiteWith(t, edit{`min_confidence: \S+`, "min_confidence: 0.5"}), true},
		{[]byte("version: 1\nserver: [not, a, map\n"), false},                         // broken YAML
		{suiteWith(t, edit{`dirs: \[\]`, "dirs: [" + polDir + "]"}), true},            // policy from a directory
		{suiteWith(t, edit{`dirs: \[\]`, "dirs: [" + badPolDir + "]"}), false},        // Rego syntax error
		{suiteWith(t, edit{`default_target: \S+`, "default_target: nowhere"}), false}, // invalid config
		{suiteWith(t, edit{`min_confidence: \S+`, "min_confidence: 0.45"}), true},
	}
	if err := os.WriteFile(path, versions[0].yaml, 0o600); err != nil {
		t.Fatal(err)
	}

	// The workers keep sending until every version has been reloaded (and
	// at least minPerWorker requests each), so all reloads happen under
	// load however fast the requests are.
	const workers, minPerWorker, cycles = 8, 25, 2
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	reloadsDone := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-reloadsDone:
					if i >= minPerWorker {
						return
					}
				default:
				}
				r := h.try(context.Background(), h.sim, chatBody("auto", fmt.Sprintf("worker %d says hello %d", w, i)), nil)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	// Reload while the workers run: each version written, then reloaded.
	var reloads, failed, wantOK, wantFailed int
	var olds []*route.Router
	for i := range cycles * len(versions) {
		time.Sleep(40 * time.Millisecond) // pacing, not synchronisation
		v := versions[i%len(versions)]
		if err := os.WriteFile(path, v.yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		rt, err := route.Reload(context.Background(), path, zap.NewNop(), h.metrics, h.srv.Router())
		if (err == nil) != v.ok {
			t.Errorf("version %d: reload error %v, want ok=%v", i%len(versions), err, v.ok)
		}
		if v.ok {
			wantOK++
		} else {
			wantFailed++
		}
		if err == nil {
			olds = append(olds, h.srv.Swap(rt))
			reloads++
		} else {
			failed++
		}
	}
	close(reloadsDone)
	wg.Wait()
	var n, bad int
	for _, r := range results {
		n++
		if r.err != nil || r.status != 200 {
			bad++
			if bad < 5 {
				t.Errorf("request failed: %v %d %.200s", r.err, r.status, r.body)
			}
		}
		if r.took > 10*time.Second {
			t.Errorf("request took %v", r.took)
		}
	}
	for _, o := range olds {
		o.Close()
	}
	t.Logf("%d requests, %d failed, %d reloads swapped in, %d refused", n, bad, reloads, failed)
	if n < workers*minPerWorker {
		t.Fatalf("%d answers, want at least %d", n, workers*minPerWorker)
	}
	if reloads != wantOK || failed != wantFailed {
		t.Fatalf("%d good and %d bad reloads, want %d and %d", reloads, failed, wantOK, wantFailed)
	}
	if bad != 0 {
		t.Fatalf("%d of %d requests failed during reloads", bad, n)
	}
}

// testClientCancels: clients hang up while sending the body, while the
// provider is slow, and in the middle of an SSE answer. Each request ends
// (one result each), the server keeps serving and every ext_proc stream
// closes (switchyard_streams_active back to 0).
func testClientCancels(t *testing.T, h *harness) {
	// Start from healthy hosts: an earlier subtest's failures (a loaded
	// machine can time out a few attempts) could leave small-a ejected, and
	// then a "slow provider" request is served by small-b without ever
	// reaching the slow script.
	h.heal(h.sim)
	const each = 6
	// arrived[i]: slow request i is at the provider.
	arrived := make([]chan struct{}, each)
	for i := range arrived {
		arrived[i] = make(chan struct{}, 4)
	}
	h.reset(map[string]fakeprovider.Script{"vendor-a": {Func: func(r fakeprovider.Request) (fakeprovider.Behavior, bool) {
		if r.Stream {
			return fakeprovider.Behavior{StreamChunks: strings.Fields("one two three four five six seven eight"), ChunkDelay: 100 * time.Millisecond}, true
		}
		for i := range arrived {
			if strings.Contains(string(r.Body), fmt.Sprintf("slow provider %d\"", i)) {
				arrived[i] <- struct{}{}
			}
		}
		return fakeprovider.Behavior{Latency: 5 * time.Second}, true
	}}})
	defer h.reset(nil)
	var wg sync.WaitGroup
	results := make(chan string, 3*each)

	for i := 0; i < each; i++ {
		// 1. While sending the body: half of it, then the context ends.
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			body := chatBody("small-a", fmt.Sprintf("cancel while sending %d", i))
			go func() {
				_, _ = pw.Write([]byte(body[:len(body)/2]))
				cancel()
				_ = pw.CloseWithError(context.Canceled)
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.sim.url+"/v1/chat/completions", pr)
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(body))
			resp, err := h.hc.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			results <- "send"
		}(i)
		// 2. While the provider is slow: cancel once it has the request.
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan result, 1)
			go func() { done <- h.try(ctx, h.sim, chatBody("small-a", fmt.Sprintf("slow provider %d", i)), nil) }()
			select {
			case <-arrived[i]: // at the provider: hang up
				cancel()
				<-done
			case r := <-done: // answered before reaching the provider
				if r.err != nil || r.status == 200 {
					t.Errorf("slow request: %v %d before it reached the provider", r.err, r.status)
				}
				t.Logf("slow request answered %d before reaching the provider", r.status)
			}
			results <- "slow"
		}(i)
		// 3. Mid-SSE: read the first chunk, then hang up.
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := `{"model":"small-a","stream":true,"messages":[{"role":"user","content":` + jsonString(fmt.Sprintf("stream %d", i)) + `}]}`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.sim.url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.hc.Do(req)
			if err != nil {
				t.Errorf("stream: %v", err)
				results <- "sse"
				return
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "data: ") {
				t.Errorf("stream first line %q %v", line, err)
			}
			cancel()
			resp.Body.Close()
			results <- "sse"
		}(i)
	}
	wg.Wait()
	close(results)
	count := map[string]int{}
	for r := range results {
		count[r]++
	}
	if count["send"] != each || count["slow"] != each || count["sse"] != each {
		t.Fatalf("results %v, want %d of each", count, each)
	}
	h.streamsIdle()
	h.reset(nil)
	if r := h.try(context.Background(), h.sim, chatBody("auto", "still there?"), nil); r.err != nil || r.status != 200 {
		t.Fatalf("after cancellations: %v %d %s", r.err, r.status, r.body)
	}
	h.streamsIdle()
}

// testSIGTERM runs the real binary (`switchyard serve`, built with go build)
// behind a second envoysim, holds requests at a slow provider, sends
// SIGTERM: the held requests are answered 200, new ones are refused
// (Envoy's status_on_error for a failed ext_proc stream), and the process
// exits 0 within server.shutdown_grace.
func testSIGTERM(t *testing.T, h *harness) {
	bin := filepath.Join(t.TempDir(), "switchyard")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const grace = 5 * time.Second
	cfgPath := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(cfgPath, suiteWith(t, edit{`strict_json: true`, "strict_json: true\n  shutdown_grace: 5s"}), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "info")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrs := make(chan [2]string, 1)
	var logMu sync.Mutex
	var logLines []string
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "switchyard serving" {
				addrs <- [2]string{fmt.Sprint(m["grpc_addr"]), fmt.Sprint(m["admin_addr"])}
			}
		}
		exited <- cmd.Wait()
	}()
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-exited:
		killed = true
		t.Fatalf("serve exited early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}

	// A second envoysim on the shipped Envoy config, pointed at the process.
	h2 := *h
	h2.grpcAddr = a[0]
	envoyYAML, err := os.ReadFile(filepath.Join(repoRoot(t), "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := h2.startSim(envoyYAML)

	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	rel := sync.OnceFunc(func() { close(release) })
	defer rel() // before the providers close: a held handler never blocks Close
	h.reset(map[string]fakeprovider.Script{"vendor-a": {Func: func(fakeprovider.Request) (fakeprovider.Behavior, bool) {
		arrived <- struct{}{}
		<-release
		return fakeprovider.Behavior{}, true
	}}})
	defer h.reset(nil)
	const inflight = 4
	held := make(chan result, inflight)
	for i := 0; i < inflight; i++ {
		go func(i int) {
			held <- h.try(context.Background(), s, chatBody("small-a", fmt.Sprintf("held %d", i)), nil)
		}(i)
	}
	for i := 0; i < inflight; i++ {
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d requests reached the provider", i)
		}
	}

	sigAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun once /readyz fails.
	deadline := time.Now().Add(grace)
	for {
		resp, err := h.hc.Get("http://" + a[1] + "/readyz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still ready after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new request is refused (not routed, not hung).
	nr := h.try(context.Background(), s, chatBody("small-a", "new after sigterm"), nil)
	if nr.err == nil && nr.status == 200 {
		t.Fatalf("a new request was served after SIGTERM: %s", nr.body)
	}
	if nr.took > 2*time.Second {
		t.Errorf("refusing took %v", nr.took)
	}
	rel()
	for i := 0; i < inflight; i++ {
		r := <-held
		if r.err != nil || r.status != 200 || r.header.Get("X-Switchyard-Target") != "fast" {
			t.Errorf("in-flight request %d: %v %d %.200s", i, r.err, r.status, r.body)
		}
	}
	select {
	case err := <-exited:
		killed = true
		if err != nil {
			t.Errorf("exit: %v", err)
		}
		t.Logf("new request refused with %d (%v); exited %v after SIGTERM", nr.status, nr.err, time.Since(sigAt).Round(time.Millisecond))
		if time.Since(sigAt) > grace+time.Second {
			t.Errorf("exit took %v, grace %v", time.Since(sigAt), grace)
		}
	case <-time.After(grace + 2*time.Second):
		t.Fatalf("still running %v after SIGTERM", grace+2*time.Second)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, l := range logLines {
		if strings.Contains(l, vendorAKey) || strings.Contains(l, clientKey) {
			t.Errorf("a secret in the log: %s", l)
		}
	}
}
