package openai

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

type rec struct {
	Data       string
	Start, End int64
	Done       bool
}

func (r rec) String() string {
	return fmt.Sprintf("[%d,%d) done=%v %q", r.Start, r.End, r.Done, r.Data)
}

// scanChunks feeds chunks to a fresh scanner (then Flush) and records events.
func scanChunks(max int, chunks ...[]byte) (evs []rec, s *SSEScanner) {
	s = &SSEScanner{MaxEventSize: max}
	fn := func(ev Event) { evs = append(evs, rec{string(ev.Data), ev.Start, ev.End, ev.Done}) }
	for _, c := range chunks {
		s.Feed(c, fn)
	}
	s.Flush(fn)
	return evs, s
}

// splitAt cuts b at the given increasing offsets.
func splitAt(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return append(out, b[prev:])
}

func randomCuts(rng *rand.Rand, n, k int) []int {
	cuts := make([]int, k)
	for i := range cuts {
		cuts[i] = rng.IntN(n + 1)
	}
	for i := 1; i < len(cuts); i++ { // insertion sort: small k
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	return cuts
}

func equalRecs(a, b []rec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withEOL rewrites a "\n"-terminated stream to another line ending.
func withEOL(b []byte, eol string) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte(eol)) }

func TestSSEGrammar(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []rec
	}{
		{"data with and without space", "data: a\n\ndata:b\n\n", []rec{{"a", 0, 9, false}, {"b", 9, 17, false}}},
		{"only one space is stripped", "data:  a \n\n", []rec{{" a ", 0, 11, false}}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []rec{{"{\"a\":\n1}", 0, 22, false}}},
		{"comments and other fields", ": ping\nevent: message\nid: 7\nretry: 1000\ndata: x\n\n", []rec{{"x", 0, 49, false}}},
		{"comment-only block is not an event", ": keep-alive\n\ndata: y\n\n", []rec{{"y", 14, 23, false}}},
		{"extra blank lines", "\n\ndata: z\n\n\n", []rec{{"z", 2, 11, false}}},
		{"data without colon", "data\n\n", []rec{{"", 0, 6, false}}},
		{"empty data line", "data:\n\n", []rec{{"", 0, 7, false}}},
		{"data field prefix is not data", "database: 1\ndata: 2\n\n", []rec{{"2", 0, 21, false}}},
		{"done", "data: [DONE]\n\n", []rec{{"[DONE]", 0, 14, true}}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []rec{{"a", 0, 11, false}, {"b", 11, 22, false}}},
		{"cr", "data: a\r\rdata: b\r\r", []rec{{"a", 0, 9, false}, {"b", 9, 18, false}}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []rec{{"a\nb\nc", 0, 27, false}}},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []rec{{"a", 0, 12, false}}},
		{"bom later is data", "data: a\n\n\xEF\xBB\xBFdata: b\n\n", []rec{{"a", 0, 9, false}}},
		{"incomplete final event is not dispatched", "data: a\n\ndata: b\n", []rec{{"a", 0, 9, false}}},
		{"final cr event dispatched at flush", "data: a\r\r", []rec{{"a", 0, 9, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := scanChunks(0, []byte(tc.stream))
			if !equalRecs(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			// Every two-way split gives the same events.
			for i := 0; i <= len(tc.stream); i++ {
				got, _ := scanChunks(0, splitAt([]byte(tc.stream), i)...)
				if !equalRecs(got, tc.want) {
					t.Fatalf("split at %d: got %v\nwant %v", i, got, tc.want)
				}
			}
		})
	}
}

func TestSSESpansCutEvents(t *testing.T) {
	stream := readTestdata(t, "chat_stream_usage.sse")
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		s := withEOL(stream, eol)
		evs, sc := scanChunks(0, s)
		if len(evs) != 36 || !evs[len(evs)-1].Done || sc.Dropped() != 0 {
			t.Fatalf("eol %q: %d events, last %v, dropped %d", eol, len(evs), evs[len(evs)-1], sc.Dropped())
		}
		for _, ev := range evs {
			// Each span, scanned alone, is exactly that one event.
			one, _ := scanChunks(0, s[ev.Start:ev.End])
			if len(one) != 1 || one[0].Data != ev.Data || one[0].End != ev.End-ev.Start {
				t.Fatalf("eol %q: span %v rescanned as %v", eol, ev, one)
			}
		}
	}
}

func TestSSEEverySplitPoint(t *testing.T) {
	for _, name := range []string{"chat_stream_usage.sse", "responses_stream.sse"} {
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			s := withEOL(readTestdata(t, name), eol)
			if name == "chat_stream_usage.sse" {
				s = s[:1600] // keep -race runs fast; the random splits below cover the whole file
				s = s[:bytes.LastIndex(s, []byte(eol+eol))+2*len(eol)]
			}
			want, _ := scanChunks(0, s)
			for i := 0; i <= len(s); i++ {
				if got, _ := scanChunks(0, splitAt(s, i)...); !equalRecs(got, want) {
					t.Fatalf("%s eol %q split at %d: got %v\nwant %v", name, eol, i, got, want)
				}
			}
		}
	}
}

func TestSSERandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, name := range []string{"chat_stream_usage.sse", "responses_stream.sse"} {
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			s := withEOL(readTestdata(t, name), eol)
			want, _ := scanChunks(0, s)
			for n := 0; n < 200; n++ {
				cuts := randomCuts(rng, len(s), 1+rng.IntN(40))
				if got, _ := scanChunks(0, splitAt(s, cuts...)...); !equalRecs(got, want) {
					t.Fatalf("%s eol %q cuts %v: events differ", name, eol, cuts)
				}
			}
			// One byte at a time.
			var bytewise [][]byte
			for i := range s {
				bytewise = append(bytewise, s[i:i+1])
			}
			if got, _ := scanChunks(0, bytewise...); !equalRecs(got, want) {
				t.Fatalf("%s eol %q byte by byte: events differ", name, eol)
			}
		}
	}
}

func TestSSEPending(t *testing.T) {
	var s SSEScanner
	n := 0
	fn := func(Event) { n++ }
	if p := s.Feed([]byte("data: a\n\ndata: {\"x\""), fn); p != 10 || string(s.Pending()) != `data: {"x"` || n != 1 {
		t.Fatalf("pending %d %q, events %d", p, s.Pending(), n)
	}
	if p := s.Feed([]byte(":1}\n"), fn); p != 14 || n != 1 {
		t.Fatalf("pending %d %q, events %d", p, s.Pending(), n)
	}
	if p := s.Feed([]byte("\n: ping"), fn); p != 6 || string(s.Pending()) != ": ping" || n != 2 {
		t.Fatalf("pending %d %q, events %d", p, s.Pending(), n)
	}
	if s.Offset() != 30 || s.Events() != 2 {
		t.Errorf("offset %d events %d", s.Offset(), s.Events())
	}
	s.Reset()
	if len(s.Pending()) != 0 || s.Offset() != 0 || s.Events() != 0 {
		t.Errorf("reset left state: %q %d", s.Pending(), s.Offset())
	}
	var got []rec
	s.Feed([]byte("data: b\n\n"), func(ev Event) { got = append(got, rec{string(ev.Data), ev.Start, ev.End, ev.Done}) })
	if len(got) != 1 || got[0] != (rec{"b", 0, 9, false}) {
		t.Errorf("after reset: %v", got)
	}
}

func TestSSEOversized(t *testing.T) {
	big := "data: " + strings.Repeat("x", 300) + "\n\n"
	stream := []byte("data: a\n\n" + big + "data: b\n\n" + ": " + strings.Repeat("c", 300) + "\n\ndata: c\n\n")
	want := []rec{{"a", 0, 9, false}, {"b", 9 + 308, 9 + 308 + 9, false}, {"c", 9 + 308 + 9 + 304, 9 + 308 + 9 + 304 + 9, false}}
	whole, s := scanChunks(100, stream)
	if !equalRecs(whole, want) || s.Dropped() != 2 {
		t.Fatalf("whole: %v dropped %d", whole, s.Dropped())
	}
	for i := 0; i <= len(stream); i++ {
		got, s := scanChunks(100, splitAt(stream, i)...)
		if !equalRecs(got, want) || s.Dropped() != 2 {
			t.Fatalf("split at %d: %v dropped %d", i, got, s.Dropped())
		}
	}
	// Fed in small chunks, the scanner never holds more than the limit
	// plus one chunk.
	sc := SSEScanner{MaxEventSize: 100}
	for i := 0; i < len(stream); i += 7 {
		p := sc.Feed(stream[i:min(i+7, len(stream))], func(Event) {})
		if p > 107 {
			t.Fatalf("holding %d bytes at offset %d", p, i)
		}
	}
	// An unterminated flood is dropped and not held.
	flood := SSEScanner{}
	chunk := bytes.Repeat([]byte("data: yyyyyyyyyyyyyyyyyyyyyyyyy\n"), 1024) // 32 KiB of one event
	for i := 0; i < 64; i++ {
		if p := flood.Feed(chunk, func(Event) { t.Fatal("flood dispatched") }); p > DefaultMaxEventSize {
			t.Fatalf("holding %d bytes", p)
		}
	}
	if flood.Dropped() != 1 || cap(flood.buf) > 2*DefaultMaxEventSize {
		t.Errorf("dropped %d, buffer cap %d", flood.Dropped(), cap(flood.buf))
	}
}

// usageStream returns the chat stream and the bytes expected once its
// usage-only event is removed.
func usageStream(t testing.TB, eol string) (stream, want []byte) {
	stream = withEOL(readTestdata(t, "chat_stream_usage.sse"), eol)
	marker := []byte(`data: {"id":"chatcmpl-B3x9","object":"chat.completion.chunk","created":1767225600,"model":"small-a-2026-01","system_fingerprint":"fp_0c1d","service_tier":"default","choices":[],"usage"`)
	i := bytes.Index(stream, marker)
	j := bytes.Index(stream[i:], []byte(eol+eol))
	if i < 0 || j < 0 {
		t.Fatal("usage chunk not found in test stream")
	}
	end := i + j + 2*len(eol)
	want = append(append([]byte{}, stream[:i]...), stream[end:]...)
	return stream, want
}

func filterChunks(f *SSEFilter, chunks [][]byte, drop func([]byte) bool) []byte {
	var out []byte
	for i, c := range chunks {
		out = f.Filter(c, i == len(chunks)-1, drop, out)
	}
	return out
}

func TestSSEFilterUsageEverySplit(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		stream, want := usageStream(t, eol)
		if bytes.Equal(stream, want) {
			t.Fatal("nothing to filter")
		}
		// Keep -race runs fast: start at an event boundary about 2 KB before
		// the end (the usage chunk is the second-to-last event). The random
		// splits below cover the whole stream.
		cut := bytes.Index(stream[len(stream)-2000:], []byte(eol+eol)) + len(stream) - 2000 + 2*len(eol)
		stream, want = stream[cut:], want[cut:]
		if len(stream)-len(want) < 300 || !bytes.HasPrefix(stream, []byte("data: ")) {
			t.Fatalf("trimmed stream lost the usage chunk or starts mid-event: %q", stream[:20])
		}
		var f SSEFilter
		if got := filterChunks(&f, [][]byte{stream}, IsUsageOnlyChunk); !bytes.Equal(got, want) {
			t.Fatalf("eol %q whole: output differs from stream minus usage chunk", eol)
		}
		for i := 0; i <= len(stream); i++ {
			if got := filterChunks(&f, splitAt(stream, i), IsUsageOnlyChunk); !bytes.Equal(got, want) {
				t.Fatalf("eol %q split at %d: output differs", eol, i)
			}
		}
	}
}

func TestSSEFilterRandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	keepAll := func([]byte) bool { return false }
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		stream, want := usageStream(t, eol)
		var f SSEFilter
		for n := 0; n < 300; n++ {
			chunks := splitAt(stream, randomCuts(rng, len(stream), 1+rng.IntN(60))...)
			// Emitted output is always a prefix of the final output, so no
			// byte is emitted that a later decision would need back.
			var out []byte
			for i, c := range chunks {
				out = f.Filter(c, i == len(chunks)-1, IsUsageOnlyChunk, out)
				if !bytes.HasPrefix(want, out) {
					t.Fatalf("eol %q: output after chunk %d is not a prefix of the result", eol, i)
				}
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("eol %q: output differs", eol)
			}
			if got := filterChunks(&f, chunks, keepAll); !bytes.Equal(got, stream) {
				t.Fatalf("eol %q: keep-all filter changed the stream", eol)
			}
		}
	}
}

func TestSSEFilterHoldsPartialEvent(t *testing.T) {
	var f SSEFilter
	drop := func(d []byte) bool { return string(d) == "drop" }
	var out []byte
	out = f.Filter([]byte("data: keep\n\n: ping\n\ndata: dr"), false, drop, out)
	if string(out) != "data: keep\n\n: ping\n\n" {
		t.Fatalf("first chunk emitted %q", out)
	}
	out = f.Filter([]byte("op\n\ndata: tail"), false, drop, out)
	if string(out) != "data: keep\n\n: ping\n\n" {
		t.Fatalf("second chunk emitted %q", out)
	}
	out = f.Filter([]byte(" end"), true, drop, out)
	if string(out) != "data: keep\n\n: ping\n\ndata: tail end" {
		t.Fatalf("end of stream emitted %q", out)
	}
	// The filter reset itself: a new stream starts at offset 0.
	out = f.Filter([]byte("data: drop\n\ndata: x\n\n"), true, drop, nil)
	if string(out) != "data: x\n\n" {
		t.Fatalf("reused filter emitted %q", out)
	}
}

func TestSSEFilterPassesOversized(t *testing.T) {
	f := SSEFilter{Scanner: SSEScanner{MaxEventSize: 64}}
	stream := []byte("data: " + strings.Repeat("z", 200) + "\n\ndata: drop\n\ndata: ok\n\n")
	want := []byte("data: " + strings.Repeat("z", 200) + "\n\ndata: ok\n\n")
	drop := func(d []byte) bool { return string(d) == "drop" || d[0] == 'z' }
	for i := 0; i <= len(stream); i += 5 {
		if got := filterChunks(&f, splitAt(stream, i), drop); !bytes.Equal(got, want) {
			t.Fatalf("split at %d: got %q", i, got)
		}
	}
}
