package signals

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
)

// fakeLLM is an OpenAI-compatible classification endpoint whose behaviour
// the test switches.
type fakeLLM struct {
	srv     *httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	mode    string // ok | slow | 500 | garbage:<content>
	intent  string
	lastReq []byte
	lastHdr http.Header
	entered chan struct{} // slow mode: signalled when a request arrives
	release chan struct{} // slow mode: closed to let requests finish
}

func newFakeLLM(t *testing.T) *fakeLLM {
	f := &fakeLLM{mode: "ok", intent: "legal", entered: make(chan struct{}, 16), release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	return f
}

func (f *fakeLLM) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	mode, intent := f.mode, f.intent
	f.lastReq, f.lastHdr = body, r.Header.Clone()
	f.mu.Unlock()
	answer := func(content string) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": content}}}})
		_, _ = w.Write(b)
	}
	switch {
	case mode == "ok":
		answer(`{"intent":"` + intent + `","confidence":0.93}`)
	case mode == "slow":
		f.entered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		answer(`{"intent":"` + intent + `","confidence":0.93}`)
	case mode == "500":
		http.Error(w, `{"error":{"message":"boom"}}`, http.StatusInternalServerError)
	case strings.HasPrefix(mode, "garbage:"):
		answer(strings.TrimPrefix(mode, "garbage:"))
	case mode == "raw":
		_, _ = w.Write([]byte("not json at all"))
	}
}

const llmTimeout = 150 * time.Millisecond

func newLLMEngine(t *testing.T, f *fakeLLM, rec *recorder, edit func(*config.Config)) *Engine {
	t.Setenv("VENDOR_A_API_KEY", "sk-test-secret-123")
	return newTestEngine(t, func(c *config.Config) {
		c.Classifier.Mode = "llm"
		c.Classifier.LLM.Model = "small-a"
		c.Classifier.LLM.Endpoint = f.srv.URL + "/v1/chat/completions"
		c.Classifier.LLM.InsecureHTTP = true
		c.Classifier.LLM.Timeout = config.Duration(llmTimeout)
		c.Classifier.LLM.Breaker = config.Breaker{Failures: 3, CoolDown: config.Duration(time.Minute)}
		c.Classifier.CacheSize = 0
		if edit != nil {
			edit(c)
		}
	}, Options{Observer: rec})
}

var askBody = `{"model":"auto","messages":[{"role":"user","content":"Is my non-compete enforceable in Texas?"}]}`

func compute(t *testing.T, e *Engine, body string) Signals {
	t.Helper()
	var s Signals
	if err := e.Compute(context.Background(), mustParse(t, body, openai.ShapeChat), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLLMSuccess(t *testing.T) {
	f := newFakeLLM(t)
	f.intent = "creative" // differs from what the embedded model would say
	rec := &recorder{}
	e := newLLMEngine(t, f, rec, func(c *config.Config) { c.Classifier.CacheSize = 128 })
	s := compute(t, e, askBody)
	if s.Classifier != SourceLLM || s.Intent != "creative" || s.IntentConfidence != 0.93 {
		t.Fatalf("got %s %.2f via %s, want creative 0.93 via llm", s.Intent, s.IntentConfidence, s.Classifier)
	}
	f.mu.Lock()
	req, hdr := f.lastReq, f.lastHdr
	f.mu.Unlock()
	if got := hdr.Get("Authorization"); got != "Bearer sk-test-secret-123" {
		t.Errorf("authorization = %q", got)
	}
	checks := map[string]string{
		"model": "gpt-4o-mini", "temperature": "0", "response_format.type": "json_object",
		"messages.0.role": "system", "messages.1.role": "user",
	}
	for path, want := range checks {
		if got := gjson.GetBytes(req, path).String(); got != want {
			t.Errorf("request %s = %q, want %q", path, got, want)
		}
	}
	if mt := gjson.GetBytes(req, "max_tokens").Int(); mt <= 0 || mt > 64 {
		t.Errorf("max_tokens = %d", mt)
	}
	if !strings.Contains(gjson.GetBytes(req, "messages.1.content").Str, "non-compete enforceable") {
		t.Errorf("user text not sent: %s", req)
	}
	for _, in := range config.Intents {
		if !strings.Contains(gjson.GetBytes(req, "messages.0.content").Str, in) {
			t.Errorf("system prompt does not list %s", in)
		}
	}
	// Cached: no second call.
	s2 := compute(t, e, askBody)
	if s2.Classifier != SourceCache || s2.Intent != "creative" || f.hits.Load() != 1 {
		t.Fatalf("second call %s via %s, server hits %d", s2.Intent, s2.Classifier, f.hits.Load())
	}
}

func TestLLMFailuresFallBack(t *testing.T) {
	tests := []struct {
		mode    string
		outcome string
	}{
		{"500", LLMStatus},
		{"raw", LLMGarbage},
		{"garbage:I think it is legal.", LLMGarbage},
		{`garbage:{"intent":"astrology","confidence":0.9}`, LLMGarbage},
		{`garbage:{"intent":"legal","confidence":1.7}`, LLMGarbage},
		{`garbage:{"intent":"legal","confidence":"high"}`, LLMGarbage},
		{`garbage:{"intent":"legal"}`, LLMGarbage},
		{`garbage:["legal",0.9]`, LLMGarbage},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := newFakeLLM(t)
			f.set(tt.mode)
			rec := &recorder{}
			e := newLLMEngine(t, f, rec, nil)
			s := compute(t, e, askBody)
			if s.Classifier != SourceEmbedded || s.Intent != "legal" {
				t.Fatalf("got %s via %s, want the embedded answer legal", s.Intent, s.Classifier)
			}
			if rec.lastOutcome() != tt.outcome {
				t.Fatalf("outcome %q, want %q", rec.lastOutcome(), tt.outcome)
			}
		})
	}
}

func TestLLMAcceptsFencedJSON(t *testing.T) {
	f := newFakeLLM(t)
	f.set("garbage:```json\n{\"intent\": \"Code\", \"confidence\": 0.8}\n```")
	e := newLLMEngine(t, f, &recorder{}, nil)
	if s := compute(t, e, askBody); s.Classifier != SourceLLM || s.Intent != "code" {
		t.Fatalf("got %s via %s", s.Intent, s.Classifier)
	}
}

func TestLLMDeadline(t *testing.T) {
	f := newFakeLLM(t)
	f.set("slow")
	rec := &recorder{}
	e := newLLMEngine(t, f, rec, nil)
	start := time.Now()
	s := compute(t, e, askBody)
	took := time.Since(start)
	if s.Classifier != SourceEmbedded {
		t.Fatalf("classifier %s, want embedded fallback", s.Classifier)
	}
	if rec.lastOutcome() != LLMTimeout {
		t.Fatalf("outcome %q, want timeout", rec.lastOutcome())
	}
	// Generous bound: the deadline is 150ms; a shared CI machine may add a lot.
	if took < llmTimeout || took > llmTimeout+2*time.Second {
		t.Fatalf("Compute took %v with a %v deadline", took, llmTimeout)
	}
}

func TestLLMRequestCanceledIsNotAFailure(t *testing.T) {
	f := newFakeLLM(t)
	f.set("slow")
	rec := &recorder{}
	e := newLLMEngine(t, f, rec, func(c *config.Config) { c.Classifier.LLM.Breaker.Failures = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-f.entered
		cancel()
	}()
	var s Signals
	_ = e.Compute(ctx, mustParse(t, askBody, openai.ShapeChat), &s)
	if rec.lastOutcome() != LLMCanceled || s.Classifier != SourceEmbedded {
		t.Fatalf("outcome %q via %s", rec.lastOutcome(), s.Classifier)
	}
	if st := e.llm.breaker.State(); st != "closed" {
		t.Fatalf("breaker %s after a client cancellation", st)
	}
}

// fakeClock is a settable time source for the breaker.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLLMBreaker(t *testing.T) {
	f := newFakeLLM(t)
	f.set("500")
	rec := &recorder{}
	e := newLLMEngine(t, f, rec, nil)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	e.llm.breaker.now = clock.Now

	for range 3 {
		compute(t, e, askBody)
	}
	if got := f.hits.Load(); got != 3 {
		t.Fatalf("server hits %d, want 3", got)
	}
	if st := e.llm.breaker.State(); st != "open" {
		t.Fatalf("breaker %s after 3 failures, want open", st)
	}
	// Open: no calls, embedded answers.
	for range 5 {
		if s := compute(t, e, askBody); s.Classifier != SourceEmbedded {
			t.Fatalf("classifier %s while open", s.Classifier)
		}
	}
	if got := f.hits.Load(); got != 3 || rec.lastOutcome() != LLMBreakerOpen {
		t.Fatalf("open breaker let calls through: hits %d outcome %s", got, rec.lastOutcome())
	}

	// Cool-down over, still failing: one probe, then open again.
	clock.Advance(time.Minute + time.Second)
	compute(t, e, askBody)
	compute(t, e, askBody)
	if got := f.hits.Load(); got != 4 {
		t.Fatalf("half-open sent %d probes, want 1", got-3)
	}
	if st := e.llm.breaker.State(); st != "open" {
		t.Fatalf("breaker %s after a failed probe, want open", st)
	}

	// Recovered: the next probe closes it and traffic flows again.
	f.set("ok")
	clock.Advance(time.Minute + time.Second)
	if s := compute(t, e, askBody); s.Classifier != SourceLLM {
		t.Fatalf("probe answer via %s, want llm", s.Classifier)
	}
	if st := e.llm.breaker.State(); st != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", st)
	}
	if s := compute(t, e, askBody); s.Classifier != SourceLLM || f.hits.Load() != 6 {
		t.Fatalf("after recovery: via %s, hits %d", s.Classifier, f.hits.Load())
	}
}

func TestLLMHalfOpenSingleProbe(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	b := newBreaker(1, time.Second, clock.Now)
	g, ok := b.allow()
	if !ok {
		t.Fatal("closed breaker refused")
	}
	b.record(g, false)
	if _, ok := b.allow(); ok {
		t.Fatal("open breaker admitted a call")
	}
	clock.Advance(2 * time.Second)
	probe, ok := b.allow()
	if !ok {
		t.Fatal("no probe after the cool-down")
	}
	if _, ok := b.allow(); ok {
		t.Fatal("second caller admitted while the probe is in flight")
	}
	// A stale failure from before the probe does not disturb it.
	b.record(g, false)
	if b.State() != "half_open" {
		t.Fatalf("stale result changed state to %s", b.State())
	}
	b.abort(probe) // probe ended without a verdict: the next caller probes
	if _, ok := b.allow(); !ok {
		t.Fatal("no new probe after an aborted one")
	}
}

func TestLLMBusyFallsBackWithoutWaiting(t *testing.T) {
	f := newFakeLLM(t)
	f.set("slow")
	rec := &recorder{}
	e := newLLMEngine(t, f, rec, func(c *config.Config) {
		c.Classifier.LLM.MaxConcurrent = 1
		c.Classifier.LLM.Timeout = config.Duration(5 * time.Second)
	})
	done := make(chan Signals)
	go func() {
		var s Signals
		_ = e.Compute(context.Background(), mustParse(t, askBody, openai.ShapeChat), &s)
		done <- s
	}()
	<-f.entered // the only slot is taken
	s := compute(t, e, askBody)
	if s.Classifier != SourceEmbedded || rec.lastOutcome() != LLMBusy {
		t.Fatalf("second call via %s outcome %s, want embedded/busy", s.Classifier, rec.lastOutcome())
	}
	f.release <- struct{}{} // unblocks nothing by itself (channel is closed in cleanup); finish the first call:
	first := <-done
	if first.Classifier != SourceLLM {
		t.Fatalf("first call via %s", first.Classifier)
	}
}

func TestLLMConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config)
	}{
		{"plain http without insecure_http", func(c *config.Config) {
			c.Classifier.LLM.Endpoint = "http://127.0.0.1:9/v1/chat/completions"
		}},
		{"provider without tls", func(c *config.Config) { c.Classifier.LLM.Model = "onprem-llm" }},
		{"bad endpoint", func(c *config.Config) { c.Classifier.LLM.Endpoint = "ftp://x/y" }},
		{"missing ca file", func(c *config.Config) { c.Classifier.LLM.CAFile = "/nonexistent/ca.pem" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := testSnapshot(t, func(c *config.Config) {
				c.Classifier.Mode = "llm"
				c.Classifier.LLM.Model = "small-a"
				tt.edit(c)
			})
			e, err := New(snap, Options{})
			if err == nil {
				e.Close()
				t.Fatal("want error")
			}
			if strings.Contains(err.Error(), "sk-") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}
