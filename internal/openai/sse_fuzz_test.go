package openai

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
)

// chunksBySizes cuts stream into chunks whose sizes come from sizes (each
// byte a size from 1 to 16, cycling), so the fuzzer controls the split.
func chunksBySizes(stream, sizes []byte) [][]byte {
	if len(sizes) == 0 {
		return [][]byte{stream}
	}
	var out [][]byte
	for i, k := 0, 0; i < len(stream); k++ {
		n := int(sizes[k%len(sizes)]%16) + 1
		n = min(n, len(stream)-i)
		out = append(out, stream[i:i+n])
		i += n
	}
	if len(out) == 0 {
		out = append(out, nil)
	}
	return out
}

// FuzzSSE checks that feeding a stream in arbitrary chunks gives the same
// events, drops and filter output as feeding it whole, and never panics.
func FuzzSSE(f *testing.F) {
	f.Add(readTestdata(f, "responses_stream.sse")[:700], []byte{3, 200, 7})
	f.Add([]byte("data: a\r\n\r\ndata: b\rdata: c\n\r\n: x\n\ndata: [DONE]\n\n"), []byte{0})
	f.Add([]byte("\xEF\xBB\xBFdata:x\n\ndata\n\n\r\r\n\n"), []byte{1, 2})
	f.Add([]byte(`data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`+"\n\ndata: [DONE]\r\n\r\n"), []byte{5, 9})
	f.Add([]byte("data: "+string(bytes.Repeat([]byte("z"), 90))+"\n\ndata: ok\r\r"), []byte{15})
	f.Add([]byte("data: a\r"), []byte{})

	const max = 64
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		want, ws := scanChunks(max, stream)
		chunks := chunksBySizes(stream, sizes)
		got, gs := scanChunks(max, chunks...)
		if !equalRecs(got, want) || gs.Dropped() != ws.Dropped() {
			t.Fatalf("chunked: %v dropped %d\nwhole: %v dropped %d", got, gs.Dropped(), want, ws.Dropped())
		}
		for _, ev := range want {
			if ev.Start < 0 || ev.End > int64(len(stream)) || ev.Start >= ev.End || ev.End-ev.Start > max {
				t.Fatalf("bad span %v in a %d-byte stream", ev, len(stream))
			}
		}

		// Keeping everything reproduces the stream exactly.
		var fl SSEFilter
		fl.Scanner.MaxEventSize = max
		if out := filterChunks(&fl, chunks, func([]byte) bool { return false }); !bytes.Equal(out, stream) {
			t.Fatalf("keep-all filter changed the stream:\n%q\n%q", out, stream)
		}
		// Dropping usage chunks gives the same bytes however the stream is
		// split: the stream minus the spans of the dropped events.
		drop := func(d []byte) bool { return IsUsageOnlyChunk(d) || bytes.HasPrefix(d, []byte("x")) }
		var exp []byte
		prev := int64(0)
		for _, ev := range want {
			if drop([]byte(ev.Data)) {
				exp = append(exp, stream[prev:ev.Start]...)
				prev = ev.End
			}
		}
		exp = append(exp, stream[prev:]...)
		if out := filterChunks(&fl, chunks, drop); !bytes.Equal(out, exp) {
			t.Fatalf("filtered chunked:\n%q\nwant\n%q", out, exp)
		}
	})
}

// FuzzParseUsage runs every usage and content reader over arbitrary bytes.
func FuzzParseUsage(f *testing.F) {
	f.Add([]byte(`{"usage":{"prompt_tokens":812,"completion_tokens":64}}`))
	f.Add([]byte(`{"usage":{"input_tokens":1e3,"output_tokens":-0}}`))
	f.Add([]byte(`{"type":"response.completed","response":{"usage":{"input_tokens":35,"output_tokens":11}}}`))
	f.Add([]byte(`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}`))
	f.Add([]byte(`{"choices":[{"delta":{"content":"日本語","tool_calls":[{"function":{"arguments":"{"}}]}}]}`))
	f.Add([]byte(`{"stream":true,"stream_options":null,"messages":[]}`))
	f.Add([]byte(`{"usage":{"prompt_tokens":99999999999999999999999}}`))
	f.Add([]byte("\xff\xfe{\"usage\":{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, read := range []func([]byte) (Usage, bool){ParseUsage, UsageFromEvent} {
			u, ok := read(data)
			if !ok && u != (Usage{}) {
				t.Fatalf("not ok but non-zero usage %+v", u)
			}
			if u.InputTokens < 0 || u.InputTokens > MaxTokenCount || u.OutputTokens < 0 || u.OutputTokens > MaxTokenCount {
				t.Fatalf("count out of range: %+v", u)
			}
		}
		if IsUsageOnlyChunk(data) && (!gjson.GetBytes(data, "usage").IsObject() || !gjson.GetBytes(data, "choices").IsArray()) {
			t.Fatalf("usage-only chunk without usage or choices: %s", data)
		}
		if n := EstimateTokens(data); n < 0 || n > int64(len(data)) {
			t.Fatalf("estimate %d for %d bytes", n, len(data))
		}
		ContentFromEvent(data, nil)
		in := bytes.Clone(data)
		out, changed := ForceIncludeUsage(in)
		if !bytes.Equal(in, data) {
			t.Fatal("ForceIncludeUsage modified its input")
		}
		if !changed && !bytes.Equal(out, data) {
			t.Fatal("unchanged body differs")
		}
		if changed && (!gjson.ValidBytes(out) || gjson.GetBytes(out, "stream_options.include_usage").Type != gjson.True) {
			t.Fatalf("changed body invalid or without include_usage: %s", out)
		}
	})
}
