package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServesChatStreamingAndEmbeddings(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-chunk-delay", "0s"}, io.Discard, io.Discard, ready)
	}()
	addr := <-ready
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	post := func(path, body string) string {
		t.Helper()
		r, err := c.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, r.StatusCode, b)
		}
		return string(b)
	}
	if b := post("/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); gjson.Get(b, "choices.0.message.content").String() != "Hello from fakeprovider." {
		t.Fatalf("chat %s", b)
	}
	if b := post("/v1/completions", `{"model":"m","prompt":"hi"}`); gjson.Get(b, "choices.0.text").String() == "" {
		t.Fatalf("completions %s", b)
	}
	if b := post("/v1/embeddings", `{"model":"e","input":"hi"}`); len(gjson.Get(b, "data").Array()) != 1 {
		t.Fatalf("embeddings %s", b)
	}
	sse := post("/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	var events []string
	sc := bufio.NewScanner(strings.NewReader(sse))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, v)
		}
	}
	if len(events) < 4 || events[len(events)-1] != "[DONE]" || gjson.Get(events[len(events)-2], "usage.total_tokens").Int() == 0 {
		t.Fatalf("stream %q", events)
	}
	tr.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRejectsBadFlags(t *testing.T) {
	if err := run(context.Background(), []string{"-nope"}, io.Discard, io.Discard, nil); err == nil {
		t.Fatal("want an error")
	}
}
