package openai

import (
	"strings"
	"testing"
)

func benchChunks(b *testing.B, size int) (stream []byte, chunks [][]byte) {
	stream = readTestdata(b, "chat_stream_usage.sse")
	for i := 0; i < len(stream); i += size {
		chunks = append(chunks, stream[i:min(i+size, len(stream))])
	}
	return stream, chunks
}

// BenchmarkSSEScanner feeds a 36-event chat stream in 512-byte chunks and
// reads each event's content and usage, as the router's response phase does.
func BenchmarkSSEScanner(b *testing.B) {
	stream, chunks := benchChunks(b, 512)
	var s SSEScanner
	var text []byte
	var u Usage
	fn := func(ev Event) {
		text = ContentFromEvent(ev.Data, text)
		if got, ok := UsageFromEvent(ev.Data); ok {
			u = got
		}
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Reset()
		text = text[:0]
		for _, c := range chunks {
			s.Feed(c, fn)
		}
	}
	if u.OutputTokens != 32 {
		b.Fatalf("usage %+v", u)
	}
}

// BenchmarkSSEScanOnly is the scanner alone, without reading the events.
func BenchmarkSSEScanOnly(b *testing.B) {
	stream, chunks := benchChunks(b, 512)
	var s SSEScanner
	n := 0
	fn := func(Event) { n++ }
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Reset()
		for _, c := range chunks {
			s.Feed(c, fn)
		}
	}
}

// BenchmarkSSEFilter removes the usage-only chunk from the same stream.
func BenchmarkSSEFilter(b *testing.B) {
	stream, chunks := benchChunks(b, 512)
	var f SSEFilter
	out := make([]byte, 0, len(stream))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out = out[:0]
		for j, c := range chunks {
			out = f.Filter(c, j == len(chunks)-1, IsUsageOnlyChunk, out)
		}
	}
	if len(out) >= len(stream) {
		b.Fatal("nothing filtered")
	}
}

var chatBody2KB = []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"small-a-2026-01","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	strings.Repeat("Publish the new key, wait one cache lifetime, then switch the signer. ", 28) +
	`","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":412,"total_tokens":1224,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":"fp_0c1d"}`)

func BenchmarkParseUsage(b *testing.B) {
	b.SetBytes(int64(len(chatBody2KB)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := ParseUsage(chatBody2KB); !ok {
			b.Fatal("no usage")
		}
	}
}

func BenchmarkUsageFromEvent(b *testing.B) {
	content := []byte(`{"id":"chatcmpl-B3x9","object":"chat.completion.chunk","created":1767225600,"model":"small-a-2026-01","choices":[{"index":0,"delta":{"content":" signer"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	usage := []byte(`{"id":"chatcmpl-B3x9","object":"chat.completion.chunk","created":1767225600,"model":"small-a-2026-01","choices":[],"usage":{"prompt_tokens":57,"completion_tokens":32,"total_tokens":89}}`)
	for _, bc := range []struct {
		name string
		data []byte
	}{{"content-chunk", content}, {"usage-chunk", usage}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				UsageFromEvent(bc.data)
				IsUsageOnlyChunk(bc.data)
			}
		})
	}
}

func BenchmarkContentFromEvent(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-B3x9","object":"chat.completion.chunk","created":1767225600,"model":"small-a-2026-01","choices":[{"index":0,"delta":{"content":" signer"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = ContentFromEvent(data, dst[:0])
	}
}

func BenchmarkEstimateTokens(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"english-2KB", strings.Repeat("Publish the new key, then switch the signer. ", 46)},
		{"mixed-2KB", strings.Repeat("Rechnung fällig 发票到期 Счёт ", 60)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			text := []byte(bc.text)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				EstimateTokens(text)
			}
		})
	}
}

func BenchmarkForceIncludeUsage(b *testing.B) {
	body := []byte(`{"model":"auto","stream":true,"messages":[{"role":"system","content":"Answer briefly."},{"role":"user","content":"` +
		strings.Repeat("How do I rotate a signing key without downtime? ", 80) + `"}],"temperature":0.2}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := ForceIncludeUsage(body); !ok {
			b.Fatal("unchanged")
		}
	}
}
