package signals

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
)

var benchBodies = []struct{ name, file string }{
	{"200B", "testdata/chat_200b.json"},
	{"2KB", "testdata/chat_2k.json"},
	{"16KB", "testdata/chat_16k.json"},
	{"64KB", "testdata/chat_64k.json"},
}

// cpuTime is the user+system CPU time of the process so far. Benchmarks
// report it per op next to ns/op: on a shared machine wall time includes
// waiting for a core, CPU time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU starts the CPU clock; call the result after the loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func benchRequest(b testing.TB, file string) *openai.Request {
	b.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	req, err := openai.Parse(body, openai.ShapeChat, 64)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

func BenchmarkExtract(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			req := benchRequest(b, bb.file)
			var x Extraction
			b.ReportAllocs()
			b.SetBytes(int64(len(req.Body)))
			done := reportCPU(b)
			for b.Loop() {
				x.Extract(req, config.DefaultMaxClassifierChars)
			}
			done()
		})
	}
}

// BenchmarkClassify is the embedded classifier alone on the ask and context
// the engine would give it.
func BenchmarkClassify(b *testing.B) {
	c := testClassifier(b)
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			var x Extraction
			x.Extract(benchRequest(b, bb.file), config.DefaultMaxClassifierChars)
			ask, ctxText := intentInput(&x)
			var f featBuf
			b.ReportAllocs()
			done := reportCPU(b)
			for b.Loop() {
				c.classify(&f, ask, ctxText)
			}
			done()
		})
	}
}

func BenchmarkComplexity(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			var x Extraction
			x.Extract(benchRequest(b, bb.file), config.DefaultMaxClassifierChars)
			b.ReportAllocs()
			b.SetBytes(int64(len(x.Text)))
			done := reportCPU(b)
			for b.Loop() {
				ComplexityOf(&x)
			}
			done()
		})
	}
}

func BenchmarkKeywords(b *testing.B) {
	k, err := NewKeywords(testSnapshot(b, nil).Config.Routing.Keywords)
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			var x Extraction
			x.Extract(benchRequest(b, bb.file), config.DefaultMaxClassifierChars)
			var lower []byte
			var sig, rules []string
			b.ReportAllocs()
			b.SetBytes(int64(len(x.Text)))
			done := reportCPU(b)
			for b.Loop() {
				sig, rules = k.Match(x.Text, &lower, sig[:0], rules[:0])
			}
			done()
		})
	}
}

// BenchmarkCompute is the whole signal pass: extraction, keywords,
// per-message complexity, PII and injection, and the embedded classifier.
// "miss" turns both caches off (everything computed every time); "newturn"
// has both on and changes the last user turn every time, as a chat's next
// request does (earlier messages come from the message cache, the
// classifier runs); "cached" repeats one body with both caches on.
func BenchmarkCompute(b *testing.B) {
	for _, mode := range []string{"miss", "newturn", "cached"} {
		intents, messages := 1024, 4096
		if mode == "miss" {
			intents, messages = 0, 0
		}
		e := newTestEngine(b, func(c *config.Config) {
			c.Classifier.CacheSize, c.Signals.MessageCacheSize = intents, messages
		}, Options{})
		for _, bb := range benchBodies {
			b.Run(bb.name+"/"+mode, func(b *testing.B) {
				req := benchRequest(b, bb.file)
				// The first five bytes of the last message's content are
				// overwritten with a counter ("newturn"): same length, and no
				// escape is left half-written.
				at := bytes.LastIndex(req.Body, []byte(`"content":"`)) + len(`"content":"`)
				var s Signals
				ctx := context.Background()
				if err := e.Compute(ctx, req, &s); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(req.Body)))
				done := reportCPU(b)
				n := 0
				for b.Loop() {
					if mode == "newturn" {
						n++
						for j, v := 4, n; j >= 0; j-- {
							req.Body[at+j] = byte('0' + v%10)
							v /= 10
						}
					}
					_ = e.Compute(ctx, req, &s)
				}
				done()
			})
		}
	}
}

// BenchmarkCacheHit is the intent cache hit path: key hash and lookup.
func BenchmarkCacheHit(b *testing.B) {
	c, err := newIntentCache(65536)
	if err != nil {
		b.Fatal(err)
	}
	var x Extraction
	x.Extract(benchRequest(b, "testdata/chat_2k.json"), config.DefaultMaxClassifierChars)
	ask, ctxText := intentInput(&x)
	const salt = 42
	c.add(c.key(salt, ask, ctxText), cachedIntent{name: "code", conf: 0.9})
	b.ReportAllocs()
	done := reportCPU(b)
	for b.Loop() {
		if _, ok := c.get(c.key(salt, ask, ctxText)); !ok {
			b.Fatal("miss")
		}
	}
	done()
}

// BenchmarkNewClassifier is start-up/reload training on the shipped set
// (final model and calibration folds).
func BenchmarkNewClassifier(b *testing.B) {
	ex := DefaultExamples()
	b.ReportAllocs()
	done := reportCPU(b)
	for b.Loop() {
		if _, err := NewClassifier(ex, 0.45); err != nil {
			b.Fatal(err)
		}
	}
	done()
}
