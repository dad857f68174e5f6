package pii

import (
	"strings"
	"testing"
)

// Benchmark prompts, written for these benchmarks: prose, code, config and
// logs of the kind users paste into a chat, with numbers, versions, dates,
// times, hashes and URLs that must not be reported.
var cleanParagraphs = []string{
	`I'm designing a read-through cache for our product catalogue service. Reads are about 40k
per second at peak, the p99 budget is 25 ms, and items change roughly 3 times a day. Should
I use a TTL of 300 s with jitter, or invalidate on write through the event bus? We run
version 2.14.3 of the client and deploy on 2024-03-18. What are the trade-offs?
`,
	"```go\nfunc (c *Cache) Get(ctx context.Context, key string) (Item, error) {\n" +
		"\tctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)\n\tdefer cancel()\n" +
		"\tif v, ok := c.lru.Get(key); ok && time.Since(v.at) < 5*time.Minute {\n\t\treturn v.item, nil\n\t}\n" +
		"\titem, err := c.store.Load(ctx, key) // retries: 3, backoff 1.5x\n" +
		"\tif err != nil {\n\t\treturn Item{}, fmt.Errorf(\"load %s: %w\", key, err)\n\t}\n" +
		"\tc.lru.Add(key, entry{item: item, at: time.Now()})\n\treturn item, nil\n}\n```\n",
	`Here is the relevant config (values redacted by me):

    server:
      listen: ":8443"
      read_timeout: 15s
      max_body_bytes: 1048576
    cache:
      size: 100000
      shards: 64
      ttl: 5m
    tokenizer: cl100k_base
    max_tokens: 2048
`,
	`Logs from the last run, 12:30:45 UTC, build 7f3c2a91e4b0, commit d41d8cd98f00b204e9800998ecf8427e:
2024-03-18T12:30:45.123Z INFO  request done status=200 dur=18.4ms bytes=5231 route=/v1/items/{id}
2024-03-18T12:30:45.311Z WARN  slow upstream dur=812ms retries=2 order=1234567890123
2024-03-18T12:30:46.002Z INFO  cache stats hits=98211 misses=1204 ratio=0.9879
See https://docs.example.com/cache/v2.1/tuning#ttl for the tuning guide (section 4.2.1).
`,
	`Follow the instructions in the README to install: run make deps, then make build, and
copy bin/server to /usr/local/bin. Node 20.11.1 and Go 1.22 are required; Python 3.12.2
works for the scripts. The table below lists p50/p95/p99 in ms: 4.1/9.8/24.7 at 1k rps,
5.0/12.2/31.5 at 5k rps. Is the jump at 5k rps expected with 8 workers and 2 cores?
`,
}

var piiParagraphs = []string{
	`Hi, I'm writing on behalf of a customer, Test User (test.user@example.com, phone
+1 415 555 0134 or (415) 555-0199). They were double charged on card 4242 4242 4242 4242
and want the refund sent to GB82 WEST 1234 5698 7654 32. Their SSN on file is 123-45-6789.
`,
	"```env\nDATABASE_URL=postgres://app:Zq8vL2mX9pK4@10.20.30.40:5432/app\n" +
		"GITHUB_TOKEN=ghp_4fK9xQ2mZ7pL1vR8tW3yB6nH0cJ5dS2aE9gU\n" +
		"SESSION_SECRET=\"mV7#qZ2!xL9pR4tW\"\n```\nWhy does the app fail to connect from 2001:db8::42?\n",
}

// benchText returns a prompt of exactly size bytes assembled from the
// paragraphs above; with withPII every third paragraph, starting with the
// first, holds PII (so even the 200-byte prompt has some).
func benchText(size int, withPII bool) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		if withPII && i%3 == 0 {
			b.WriteString(piiParagraphs[(i/3)%len(piiParagraphs)])
		} else {
			b.WriteString(cleanParagraphs[i%len(cleanParagraphs)])
		}
		b.WriteByte('\n')
	}
	return b.String()[:size]
}

func TestBenchTextsClean(t *testing.T) {
	// The clean benchmark prompts are also a false-positive test: none of the
	// numbers, versions, dates, hashes and config values may be reported.
	for _, size := range []int{200, 2048, 16384} {
		if got := counts(t, benchText(size, false)); len(got) != 0 {
			t.Errorf("clean %d-byte prompt: got %v", size, got)
		}
	}
	got := counts(t, strings.Join(piiParagraphs, "\n"))
	want := map[string]int{Email: 1, Phone: 2, CreditCard: 1, IBAN: 1, SSN: 1, Secret: 2, IPv4: 1, APIKey: 1, IPv6: 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("pii paragraphs: %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	s, err := NewScanner(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"200B", 200}, {"2KB", 2048}, {"16KB", 16384}} {
		for _, variant := range []struct {
			name string
			pii  bool
		}{{"clean", false}, {"pii", true}} {
			text := benchText(size.n, variant.pii)
			b.Run(size.name+"/"+variant.name, func(b *testing.B) {
				dst := make([]Finding, 0, int(numTypes))
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				for b.Loop() {
					dst = s.Scan(text, dst[:0])
				}
			})
		}
	}
}
