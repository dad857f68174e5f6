package fakeprovider

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, name string, s Script) (*Server, *http.Client) {
	t.Helper()
	srv := New(name, s)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(func() { tr.CloseIdleConnections(); srv.Close() })
	return srv, &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func post(t *testing.T, c *http.Client, url, body string) (*http.Response, string) {
	t.Helper()
	r, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

func TestScriptedBehaviours(t *testing.T) {
	srv, c := start(t, "vendor-a", Script{
		Default: []Behavior{{Content: "default answer"}},
		Models: map[string][]Behavior{
			"flaky":   {{Status: 503}, {Content: "recovered"}},
			"limited": {{Status: 429}},
			"broken":  {{Malformed: true}},
			"refuser": {{Refusal: "I can't help with that."}},
			"unsure":  {{Content: "maybe yes", Logprobs: []float64{-2.5, -3}, FinishReason: "length"}},
		},
	})
	u := srv.URL() + "/v1/chat/completions"
	for _, tc := range []struct {
		name, model string
		status      int
		check       func(string) bool
	}{
		{"default", "any", 200, func(b string) bool {
			return gjson.Get(b, "choices.0.message.content").String() == "default answer" && gjson.Get(b, "usage.total_tokens").Int() > 0
		}},
		{"sequence first 503", "flaky", 503, func(b string) bool { return gjson.Get(b, "error.type").String() == "server_error" }},
		{"sequence then ok", "flaky", 200, func(b string) bool { return gjson.Get(b, "choices.0.message.content").String() == "recovered" }},
		{"429", "limited", 429, func(b string) bool { return gjson.Get(b, "error.type").String() == "rate_limit_error" }},
		{"malformed", "broken", 200, func(b string) bool { return !gjson.Valid(b) }},
		{"refusal", "refuser", 200, func(b string) bool {
			return gjson.Get(b, "choices.0.message.refusal").String() != "" && gjson.Get(b, "choices.0.message.content").Type == gjson.Null
		}},
		{"logprobs and length", "unsure", 200, func(b string) bool {
			return gjson.Get(b, "choices.0.logprobs.content.1.logprob").Float() == -3 && gjson.Get(b, "choices.0.finish_reason").String() == "length"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, b := post(t, c, u, `{"model":"`+tc.model+`","messages":[]}`)
			if r == nil || r.StatusCode != tc.status || !tc.check(b) {
				t.Fatalf("got %v %s", r, b)
			}
		})
	}
	reqs := srv.Requests()
	if len(reqs) != 7 || reqs[1].Model != "flaky" || reqs[0].Server != "vendor-a" || reqs[0].Path != "/v1/chat/completions" {
		t.Fatalf("records %+v", reqs)
	}
}

func TestScriptFuncAnswersByPrompt(t *testing.T) {
	srv, c := start(t, "v", Script{
		Default: []Behavior{{Content: "default"}},
		Func: func(r Request) (Behavior, bool) {
			if strings.Contains(string(r.Body), "code") {
				return Behavior{Content: "func f() {}", CompletionTokens: 400}, true
			}
			return Behavior{}, false
		},
	})
	_, b := post(t, c, srv.URL()+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"write code"}]}`)
	if gjson.Get(b, "choices.0.message.content").String() != "func f() {}" || gjson.Get(b, "usage.completion_tokens").Int() != 400 {
		t.Fatalf("Func answer %s", b)
	}
	_, b = post(t, c, srv.URL()+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hello"}]}`)
	if gjson.Get(b, "choices.0.message.content").String() != "default" {
		t.Fatalf("fallback answer %s", b)
	}
}

func TestCompletionsAndEmbeddings(t *testing.T) {
	srv, c := start(t, "v", Script{})
	r, b := post(t, c, srv.URL()+"/v1/completions", `{"model":"m","prompt":"hi"}`)
	if r.StatusCode != 200 || gjson.Get(b, "object").String() != "text_completion" || gjson.Get(b, "choices.0.text").String() == "" {
		t.Fatalf("completions %s", b)
	}
	r, b = post(t, c, srv.URL()+"/v1/embeddings", `{"model":"e","input":["a","b"]}`)
	if r.StatusCode != 200 || len(gjson.Get(b, "data").Array()) != 2 {
		t.Fatalf("embeddings %s", b)
	}
}

func TestReset(t *testing.T) {
	srv, c := start(t, "v", Script{Default: []Behavior{{Reset: true}}})
	r, err := c.Post(srv.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err == nil {
		r.Body.Close()
		t.Fatal("want a transport error")
	}
}

func TestSSEStreamsChunksWithUsage(t *testing.T) {
	srv, c := start(t, "v", Script{Default: []Behavior{{StreamChunks: []string{"a", "b", "c"}, ChunkDelay: 20 * time.Millisecond, PromptTokens: 7, CompletionTokens: 3}}})
	r, err := c.Post(srv.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	var events []string
	var firstAt, lastAt time.Time
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		if firstAt.IsZero() {
			firstAt = time.Now()
		}
		lastAt = time.Now()
		events = append(events, strings.TrimPrefix(line, "data: "))
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	// role chunk, 3 content chunks, finish chunk, usage chunk, [DONE]
	if len(events) != 7 || events[6] != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	if gjson.Get(events[5], "usage.total_tokens").Int() != 10 || gjson.Get(events[4], "choices.0.finish_reason").String() != "stop" {
		t.Fatalf("usage/finish %q %q", events[5], events[4])
	}
	if lastAt.Sub(firstAt) < 40*time.Millisecond {
		t.Fatalf("chunks arrived together (%v): not streamed", lastAt.Sub(firstAt))
	}
	rec := srv.Requests()[0]
	if !rec.Stream {
		t.Fatal("stream flag not recorded")
	}
	// One send time per event, in order, spaced by ChunkDelay between the
	// content pieces (after the role chunk).
	if len(rec.ChunksSent) != 7 {
		t.Fatalf("ChunksSent %v", rec.ChunksSent)
	}
	for i := 1; i < len(rec.ChunksSent); i++ {
		if rec.ChunksSent[i].Before(rec.ChunksSent[i-1]) {
			t.Fatalf("send times out of order: %v", rec.ChunksSent)
		}
	}
	if d := rec.ChunksSent[4].Sub(rec.ChunksSent[1]); d < 40*time.Millisecond {
		t.Fatalf("content chunks sent %v apart, want ≥ 2 × ChunkDelay", d)
	}
}

func TestListenRecordsHostAndReset(t *testing.T) {
	srv := New("v", Script{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(func() { tr.CloseIdleConnections(); srv.Close() })
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Host = "api.vendor-a.example"
	r, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if got := srv.Requests(); len(got) != 1 || got[0].Host != "api.vendor-a.example" || got[0].ChunksSent != nil {
		t.Fatalf("records %+v", got)
	}
	srv.Reset()
	if srv.Calls() != 0 {
		t.Fatal("Reset kept the records")
	}
}

func TestLatency(t *testing.T) {
	srv, c := start(t, "v", Script{Default: []Behavior{{Latency: 50 * time.Millisecond}}})
	start := time.Now()
	if r, _ := post(t, c, srv.URL()+"/v1/chat/completions", `{}`); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("latency not applied")
	}
}
