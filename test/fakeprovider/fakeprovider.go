// Package fakeprovider is a scriptable OpenAI-compatible HTTP server for
// tests: /v1/chat/completions, /v1/completions and /v1/embeddings on a
// loopback port, with per-model behaviour (latency, error statuses,
// connection resets, malformed JSON, refusals, logprobs, finish reasons,
// SSE streaming with usage) and a record of every request received.
// Several servers can run at once, one per fake vendor.
package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Behavior is what the server does for one call.
type Behavior struct {
	// Latency is waited before the response headers.
	Latency time.Duration
	// Status, when not 0 or 200, answers with that status and an
	// OpenAI-style error body (ErrorBody overrides it).
	Status    int
	ErrorBody string
	// Reset hijacks the connection and closes it without a response.
	Reset bool
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed bool
	// Content is the assistant text; default "Hello from <server name>."
	Content string
	// Refusal sets choices[0].message.refusal and leaves content null.
	Refusal string
	// Logprobs, when set, adds choices[0].logprobs.content[] with one token
	// per value (chat), or logprobs.token_logprobs (completions).
	Logprobs []float64
	// FinishReason defaults to "stop"; "length" etc. are passed through.
	FinishReason string
	// StreamChunks are the content pieces of an SSE response; default the
	// words of Content.
	StreamChunks []string
	// ChunkDelay is waited between SSE chunks (after a flush).
	ChunkDelay time.Duration
	// HoldAfterDone keeps an SSE response open this long after
	// "data: [DONE]" before ending it (a slow end of stream).
	HoldAfterDone time.Duration
	// PromptTokens / CompletionTokens override the usage numbers.
	PromptTokens, CompletionTokens int
	// Headers are added to the response.
	Headers map[string]string
}

// Script maps model ids to behaviour sequences: call n of a model uses
// element n, and the last element repeats ("first 503, then ok" is
// []Behavior{{Status: 503}, {}}). Models without an entry use Default.
type Script struct {
	Default []Behavior
	Models  map[string][]Behavior
	// Func, when set, is asked first with the request as recorded; if it
	// returns true its Behavior is used (for answers that depend on the
	// prompt). It runs on the server's goroutines and must be safe for
	// concurrent use.
	Func func(Request) (Behavior, bool)
}

// Request is one request as the server received it.
type Request struct {
	Server string // server name (the fake vendor)
	Method string
	Path   string
	Host   string // the Host header (Go keeps it out of Header)
	Model  string // "model" from the JSON body
	Stream bool
	Header http.Header
	Body   []byte
	At     time.Time
	// ChunksSent holds, for an SSE answer, the time each event (the final
	// "data: [DONE]" included) was written and flushed, in order.
	ChunksSent []time.Time
}

// Server is one fake provider.
type Server struct {
	name  string
	mu    sync.Mutex
	scr   Script
	calls map[string]int
	reqs  []Request
	srv   *http.Server
	ln    net.Listener
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

// New returns an unstarted server with a name (used in records and the
// default content).
func New(name string, s Script) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{name: name, scr: s, calls: map[string]int{}, ctx: ctx, stop: cancel}
}

// Start listens on 127.0.0.1:0 and serves in the background.
func (s *Server) Start() error { return s.Listen("127.0.0.1:0") }

// Listen listens on addr ("host:port", ":8080") and serves in the background.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeprovider: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return nil
}

// Addr is "127.0.0.1:port"; URL is "http://" + Addr.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL (no /v1).
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the server and in-flight responses.
func (s *Server) Close() {
	s.stop()
	if s.srv != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
}

// SetScript replaces the script and resets the call counters.
func (s *Server) SetScript(sc Script) {
	s.mu.Lock()
	s.scr, s.calls = sc, map[string]int{}
	s.mu.Unlock()
}

// Requests returns a copy of every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Request(nil), s.reqs...)
	for i := range out {
		out[i].ChunksSent = slices.Clone(out[i].ChunksSent)
	}
	return out
}

// Reset forgets the recorded requests and resets the call counters (the
// script stays).
func (s *Server) Reset() {
	s.mu.Lock()
	s.reqs, s.calls = nil, map[string]int{}
	s.mu.Unlock()
}

// chunkSent records the send time of one SSE event of request idx.
func (s *Server) chunkSent(idx int) {
	now := time.Now()
	s.mu.Lock()
	if idx < len(s.reqs) {
		s.reqs[idx].ChunksSent = append(s.reqs[idx].ChunksSent, now)
	}
	s.mu.Unlock()
}

// Calls is the number of requests received.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *Server) next(req Request) Behavior {
	s.mu.Lock()
	f := s.scr.Func
	s.mu.Unlock()
	if f != nil {
		if b, ok := f(req); ok {
			return b
		}
	}
	model := req.Model
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.scr.Models[model]
	key := "m:" + model
	if !ok {
		seq, key = s.scr.Default, ""
	}
	n := s.calls[key]
	s.calls[key]++
	if len(seq) == 0 {
		return Behavior{}
	}
	return seq[min(n, len(seq)-1)]
}

// ServeHTTP implements the three endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	model := gjson.GetBytes(body, "model").String()
	stream := gjson.GetBytes(body, "stream").Bool()
	rec := Request{Server: s.name, Method: r.Method, Path: r.URL.Path, Host: r.Host, Model: model, Stream: stream, Header: r.Header.Clone(), Body: body, At: time.Now()}
	s.mu.Lock()
	idx := len(s.reqs)
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	var kind string
	switch r.URL.Path {
	case "/v1/chat/completions":
		kind = "chat"
	case "/v1/completions":
		kind = "completion"
	case "/v1/embeddings":
		kind = "embedding"
	default:
		writeError(w, http.StatusNotFound, "unknown path "+r.URL.Path, "invalid_request_error")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "use POST", "invalid_request_error")
		return
	}
	b := s.next(rec)
	if b.Latency > 0 {
		t := time.NewTimer(b.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if b.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for k, v := range b.Headers {
		w.Header().Set(k, v)
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		if b.ErrorBody != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(b.Status)
			_, _ = io.WriteString(w, b.ErrorBody)
			return
		}
		writeError(w, b.Status, fmt.Sprintf("scripted %d from %s", b.Status, s.name), errorType(b.Status))
		return
	}
	if b.Malformed {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-broken","choices":[{"message":{"content":"unterminated`)
		return
	}
	if b.Content == "" && b.Refusal == "" {
		b.Content = "Hello from " + s.name + "."
	}
	if b.FinishReason == "" {
		b.FinishReason = "stop"
	}
	prompt := b.PromptTokens
	if prompt == 0 {
		prompt = max(1, len(body)/4)
	}
	completion := b.CompletionTokens
	if completion == 0 {
		completion = max(1, len(strings.Fields(b.Content+" "+b.Refusal)))
	}
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	switch {
	case kind == "embedding":
		s.embeddings(w, body, model, usage)
	case stream:
		s.sse(w, r, kind, model, b, usage, gjson.GetBytes(body, "stream_options.include_usage").Bool(), func() { s.chunkSent(idx) })
	default:
		s.complete(w, kind, model, b, usage)
	}
}

func errorType(code int) string {
	switch {
	case code == 429:
		return "rate_limit_error"
	case code >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func writeError(w http.ResponseWriter, code int, msg, typ string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func chatLogprobs(b Behavior) any {
	if b.Logprobs == nil {
		return nil
	}
	toks := strings.Fields(b.Content)
	content := make([]map[string]any, len(b.Logprobs))
	for i, lp := range b.Logprobs {
		tok := fmt.Sprintf("t%d", i)
		if i < len(toks) {
			tok = toks[i]
		}
		content[i] = map[string]any{"token": tok, "logprob": lp, "bytes": []byte(tok), "top_logprobs": []any{}}
	}
	return map[string]any{"content": content, "refusal": nil}
}

func (s *Server) complete(w http.ResponseWriter, kind, model string, b Behavior, usage map[string]any) {
	created := time.Now().Unix()
	var out map[string]any
	if kind == "chat" {
		msg := map[string]any{"role": "assistant", "content": b.Content, "refusal": nil}
		if b.Refusal != "" {
			msg["content"], msg["refusal"] = nil, b.Refusal
		}
		out = map[string]any{
			"id": "chatcmpl-" + s.name, "object": "chat.completion", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": chatLogprobs(b), "finish_reason": b.FinishReason}},
			"usage":   usage,
		}
	} else {
		var lp any
		if b.Logprobs != nil {
			lp = map[string]any{"token_logprobs": b.Logprobs, "tokens": strings.Fields(b.Content)}
		}
		out = map[string]any{
			"id": "cmpl-" + s.name, "object": "text_completion", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "text": b.Content, "logprobs": lp, "finish_reason": b.FinishReason}},
			"usage":   usage,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) embeddings(w http.ResponseWriter, body []byte, model string, usage map[string]any) {
	in := gjson.GetBytes(body, "input")
	n := 1
	if in.IsArray() {
		n = len(in.Array())
	}
	data := make([]any, n)
	for i := range data {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": []float64{0.1 * float64(i+1), 0.2, 0.3, 0.4}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": model,
		"usage": map[string]any{"prompt_tokens": usage["prompt_tokens"], "total_tokens": usage["prompt_tokens"]},
	})
}

// sse streams chat.completion.chunk / text_completion events, flushing
// each one, then a usage chunk when include_usage, then [DONE].
func (s *Server) sse(w http.ResponseWriter, r *http.Request, kind, model string, b Behavior, usage map[string]any, includeUsage bool, sent func()) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	created := time.Now().Unix()
	id := "chatcmpl-" + s.name
	object := "chat.completion.chunk"
	if kind != "chat" {
		id, object = "cmpl-"+s.name, "text_completion"
	}
	emit := func(v any) bool {
		js, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", js); err != nil {
			return false
		}
		if rc.Flush() != nil {
			return false
		}
		sent()
		return true
	}
	wait := func() bool {
		if b.ChunkDelay <= 0 {
			return true
		}
		t := time.NewTimer(b.ChunkDelay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	pieces := b.StreamChunks
	if pieces == nil {
		for i, wd := range strings.Fields(b.Content) {
			if i > 0 {
				wd = " " + wd
			}
			pieces = append(pieces, wd)
		}
	}
	choice := func(delta map[string]any, text string, finish any) map[string]any {
		if kind == "chat" {
			return map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}
		}
		return map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": finish}
	}
	base := func(choices []any) map[string]any {
		m := map[string]any{"id": id, "object": object, "created": created, "model": model, "choices": choices}
		if includeUsage {
			m["usage"] = nil
		}
		return m
	}
	if kind == "chat" && !emit(base([]any{choice(map[string]any{"role": "assistant", "content": ""}, "", nil)})) {
		return
	}
	if b.Refusal != "" {
		pieces = nil
		if !emit(base([]any{choice(map[string]any{"refusal": b.Refusal}, b.Refusal, nil)})) {
			return
		}
	}
	for _, p := range pieces {
		if !wait() || !emit(base([]any{choice(map[string]any{"content": p}, p, nil)})) {
			return
		}
	}
	if !wait() || !emit(base([]any{choice(map[string]any{}, "", b.FinishReason)})) {
		return
	}
	if includeUsage {
		m := base([]any{})
		m["usage"] = usage
		if !emit(m) {
			return
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if rc.Flush() == nil {
		sent()
	}
	if b.HoldAfterDone > 0 {
		t := time.NewTimer(b.HoldAfterDone)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
	}
}
