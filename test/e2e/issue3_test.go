package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"

	"github.com/switchyard-llm/switchyard/internal/envoyconf"
	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

// providerKey is the credential Switchyard must put on requests to a
// provider (what t.Setenv gave it); "" for providers without auth.
func providerKey(name string) string {
	switch name {
	case "vendor-a":
		return "Bearer " + vendorAKey
	case "vendor-b":
		return "Bearer " + vendorBKey
	}
	return ""
}

// Issue 3: a request for "auto" lands on the provider of the target
// Switchyard chose, rewritten for that provider, and the client is told
// where it went.
func testAutoLandsOnChosenProvider(t *testing.T, h *harness) {
	h.reset(nil)
	prompt := "Write a Go function that reverses a singly linked list in place."
	c := h.chat(h.sim, userChat("auto", prompt))
	if c.err != nil {
		t.Fatal(c.err)
	}
	target := c.resp.Header.Get("x-switchyard-target")
	ti, ok := h.snap.Target(target)
	if !ok || target != "reasoning" {
		// The default config sends the code intent to reasoning.
		t.Fatalf("x-switchyard-target %q, want reasoning", target)
	}
	first := ti.Models[0]
	if got := c.resp.Header.Get("x-switchyard-tier"); got != ti.Tier {
		t.Errorf("x-switchyard-tier %q, want %q", got, ti.Tier)
	}
	decision := c.resp.Header.Get("x-switchyard-decision")
	if decision == "" || c.log.DynamicMetadata["switchyard"]["decision_id"] != decision {
		t.Errorf("x-switchyard-decision %q, access log decision_id %v", decision, c.log.DynamicMetadata["switchyard"]["decision_id"])
	}
	if got := c.resp.Header.Get("x-switchyard-model"); got != first.Name {
		t.Errorf("x-switchyard-model %q, want %q", got, first.Name)
	}
	if c.log.Route != envoyconf.TargetCluster(target) || c.log.Cluster != envoyconf.TargetCluster(target) {
		t.Errorf("route %q cluster %q", c.log.Route, c.log.Cluster)
	}
	if want := "Hello from " + first.ProviderName + "."; c.out.Choices[0].Message.Content != want {
		t.Errorf("answer %q, want %q", c.out.Choices[0].Message.Content, want)
	}
	for name, p := range h.providers {
		reqs := p.Requests()
		if name != first.ProviderName {
			if len(reqs) != 0 {
				t.Errorf("%s received %d requests", name, len(reqs))
			}
			continue
		}
		if len(reqs) != 1 {
			t.Fatalf("%s received %d requests, want 1", name, len(reqs))
		}
		r := reqs[0]
		if r.Model != first.UpstreamModel {
			t.Errorf("%s got model %q, want the upstream id %q", name, r.Model, first.UpstreamModel)
		}
		if got := r.Header.Get("Authorization"); got != providerKey(name) {
			t.Errorf("%s got Authorization %q", name, got)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, clientKey) {
					t.Errorf("%s received the client's key in %s", name, k)
				}
			}
		}
		if r.Host != envoyconf.UpstreamHost(first) {
			t.Errorf("%s got Host %q, want %q", name, r.Host, envoyconf.UpstreamHost(first))
		}
		if gjson.GetBytes(r.Body, "messages.0.content").String() != prompt || r.Path != "/v1/chat/completions" {
			t.Errorf("%s got %s %s", name, r.Path, r.Body)
		}
	}
}

// Issue 3: an invalid body gets the OpenAI-style error, which the SDK
// surfaces as *openai.Error; no provider is called.
func testInvalidBodyIsOpenAIError(t *testing.T, h *harness) {
	h.reset(nil)
	invalid := `{"model":"auto","messages":[{"role":"user","content":"hi"}`
	_, err := h.client.Chat.Completions.New(context.Background(), userChat("auto", "ignored"),
		option.WithRequestBody("application/json", []byte(invalid)))
	e := apiError(t, err)
	if e.StatusCode != 400 || e.Type != "invalid_request_error" || e.Code != "invalid_json" || e.Message == "" {
		t.Fatalf("SDK error: status %d type %q code %q message %q", e.StatusCode, e.Type, e.Code, e.Message)
	}
	r := h.raw(h.sim, http.MethodPost, "/v1/chat/completions", invalid, nil)
	if r.status != 400 || r.header.Get("Content-Type") != "application/json" || r.header.Get("x-switchyard-decision") == "" {
		t.Fatalf("raw: %d %v", r.status, r.header)
	}
	for _, k := range []string{"error.message", "error.type", "error.code", "error.param"} {
		if !gjson.Get(r.body, k).Exists() {
			t.Errorf("error body %s has no %s", r.body, k)
		}
	}
	if len(r.log.Attempts) != 0 || r.log.ResponseCodeDetails != "switchyard_invalid_json" {
		t.Errorf("access log: details %q attempts %d", r.log.ResponseCodeDetails, len(r.log.Attempts))
	}
	// A model the gateway does not serve is the OpenAI 404.
	_, err = h.client.Chat.Completions.New(context.Background(), userChat("gpt-nonexistent", "hello"))
	if e := apiError(t, err); e.StatusCode != 404 || e.Code != "model_not_found" {
		t.Fatalf("unknown model: %d %q", e.StatusCode, e.Code)
	}
	for name, p := range h.providers {
		if p.Calls() != 0 {
			t.Errorf("%s was called", name)
		}
	}
}

// Issue 3: a streaming request streams chunk by chunk: the client has the
// first content chunk before the provider has produced the last one.
func testStreamingIsChunkByChunk(t *testing.T, h *harness) {
	pieces := []string{"Once", " upon", " a", " time", " there", " was"}
	h.reset(map[string]fakeprovider.Script{"vendor-a": {Default: []fakeprovider.Behavior{{StreamChunks: pieces, ChunkDelay: 120 * time.Millisecond}}}})
	id := newID()
	var resp *http.Response
	stream := h.client.Chat.Completions.NewStreaming(context.Background(), userChat("auto", "hello! how is your day going?"),
		option.WithHeader("X-Request-Id", id), option.WithResponseInto(&resp))
	var got []string
	var firstAt time.Time
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			got = append(got, ch.Choices[0].Delta.Content)
		}
		if ch.Usage.TotalTokens != 0 {
			t.Errorf("the client did not ask for usage but got a usage chunk: %+v", ch.Usage)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	_ = stream.Close()
	h.sim.logs.wait(t, id)
	if strings.Join(got, "") != strings.Join(pieces, "") || len(got) != len(pieces) {
		t.Fatalf("content chunks %q", got)
	}
	if resp == nil || resp.Header.Get("x-switchyard-target") != "fast" {
		t.Fatalf("response %v", resp)
	}
	reqs := h.providers["vendor-a"].Requests()
	if len(reqs) != 1 {
		t.Fatalf("vendor-a got %d requests", len(reqs))
	}
	// Events: role, the pieces, finish, usage (Switchyard forces
	// include_usage), [DONE].
	sent := reqs[0].ChunksSent
	if len(sent) != len(pieces)+4 {
		t.Fatalf("provider sent %d events", len(sent))
	}
	lastPiece := sent[len(pieces)]
	if !firstAt.Before(lastPiece) {
		t.Fatalf("first chunk reached the client at %v, after the provider sent the last piece (%v): the stream was buffered",
			firstAt.Format(time.StampMicro), lastPiece.Format(time.StampMicro))
	}
	t.Logf("first chunk at the client %v before the provider sent its last piece", lastPiece.Sub(firstAt))
}
