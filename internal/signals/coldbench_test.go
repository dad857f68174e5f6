package signals

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
)

// Cold-cache benchmarks. The BenchmarkClassify/Complexity/Keywords/Compute
// benchmarks repeat one body, so every table the signal pass reads (the
// classifier's weight rows above all) stays in the core's caches. Under
// real load most prompts are new and other work runs between requests, so
// those reads miss. These benchmarks cycle through coldCorpusSize distinct
// generated chat bodies of about 2 KB and 16 KB (fixed seed), so that
// consecutive operations touch different weight rows and different text.
//
// The bodies are assembled from the shipped training asks
// (data/intents.jsonl) and from sentences, code and logs written here for
// Switchyard; numbers, names and the order of the pieces vary per body.

const (
	coldCorpusSize = 256
	coldSeed       = 0xc01dcafe
)

var coldSizes = []struct {
	name   string
	target int // approximate body size in bytes
}{
	{"2KB", 2 << 10},
	{"16KB", 16 << 10},
}

var coldSystemPrompts = []string{
	"You are Acme Cloud's support assistant. Be concise, cite documentation links when relevant, and never reveal internal ticket notes.",
	"You are a helpful assistant for the finance team at Northwind Traders. Answer in plain English and flag anything that needs a human review.",
	"You are a senior software engineer pairing with a colleague. Prefer small, reviewable changes and explain the reasoning behind each suggestion.",
	"You are the writing assistant of a regional newspaper. Keep the house style: short sentences, active voice, no jargon, British spelling.",
	"You help the legal operations team triage contracts. You are not a lawyer; point out clauses that need counsel and say so plainly.",
	"You are a tutor for first-year university students. Show the intermediate steps and check the final answer before giving it.",
	"You are an internal IT helpdesk bot. Ask for the asset tag when hardware is involved and never ask for passwords.",
	"You are a product analyst. Answer with numbers where possible, state your assumptions, and keep tables under ten rows.",
	"You are a travel concierge for a boutique hotel group. Be warm but brief, and mention opening hours when you recommend a place.",
	"You are a data engineering assistant. Our warehouse is Postgres 15 with dbt models; the orchestrator is Airflow 2.8.",
}

var coldUserTurns = []string{
	"Hi, our nightly export job started failing after we upgraded the SDK to version %d.%d.",
	"Thanks, that helped. One more thing about the report for customer %d.",
	"The dashboard shows we're at %d%% of quota but the job still fails with a quota error.",
	"Can you look at the numbers again? I think the March total should be %d, not what you said.",
	"We moved the meeting to Thursday at %d:30, so the summary needs the new time.",
	"I pasted the wrong file before. Here is the right one, ticket %d.",
	"My manager wants this by Friday, and it has to fit on one page.",
	"That is close, but keep the tone friendlier; the customer has been with us for %d years.",
	"Ok. What about the second option you mentioned?",
	"Sorry, I should have said: the audience is the board, not the engineers.",
	"It still throws the same error on line %d after the change.",
	"Great, and how would that work for the %d stores in the northern region?",
}

var coldAssistantTurns = []string{
	"Thanks for the details. Since that release the client counts retries against the quota, so a burst of failures can use it up quickly. Could you share the retry settings?",
	"Here is a shorter version that keeps the three main points: the deadline moved, the budget is unchanged, and the vendor review is still open.",
	"The total I used came from the second table. If the March figure is %d, the quarter comes out about %d%% higher than I said.",
	"I would start by checking the connection pool size. With %d workers and a pool of ten, most requests wait for a connection rather than for the database.",
	"Understood. I kept the structure but replaced the technical terms and moved the recommendation to the first paragraph.",
	"There are two reasonable options: keep the current schedule and add a reviewer, or move the release by a week. The second is safer if the migration is not tested yet.",
	"The error means the function returns before the channel is read. Moving the send into a goroutine or buffering the channel fixes it.",
	"I checked the clause again: the notice period is %d days and it applies to both parties, so the vendor cannot end the contract sooner either.",
	"Sure. I grouped the tickets by product area and sorted each group by age; the oldest one has been open for %d days.",
	"Done. I also fixed two typos in the second paragraph and made the dates consistent.",
}

var coldProse = []string{
	"The quarterly planning meeting covered hiring, budget, roadmap risks and the vendor review.",
	"Attendance at the Saturday market rose by %d%% after the town added a second bus line.",
	"The warehouse team reported that pallets from the new supplier arrive with damaged corners about once a week.",
	"Customers in the pilot said the onboarding emails were too long and arrived at the wrong time of day.",
	"The council voted to extend the library's opening hours on weekdays until eight in the evening.",
	"Our churn rose in the second month of the trial, mostly among teams with fewer than %d seats.",
	"The migration moved %d tables to the new cluster; two of them still need their indexes rebuilt.",
	"Several reviewers noted that the chapter on supply chains repeats material from the introduction.",
	"The pilot plant ran for %d hours without an unplanned stop, which is a record for the site.",
	"Support tickets about password resets dropped after the login page started showing the reset link.",
	"The hiking trail will close for repairs from the first of May, and the detour adds about two kilometres.",
	"Sales of the winter range were flat, while the spring collection sold out in %d days.",
	"The new intern wrote most of the test plan and found three bugs in the payment flow during the first week.",
	"Residents asked for more benches along the river path and better lighting near the bridge.",
	"The audit found that %d invoices were approved by the same person who submitted them.",
	"Delivery times improved once the routes were planned the evening before instead of in the morning.",
}

var coldCode = []string{
	"```python\nclient = acme.Client(project=\"acme-prod\", retries=%d, backoff=0.5)\nfor shard in range(64):\n    client.export(table=\"events\", shard=shard)\n```",
	"```go\nfunc sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn total + %d\n}\n```",
	"```sql\nSELECT customer_id, SUM(amount) AS total\nFROM orders\nWHERE created_at >= now() - interval '%d days'\nGROUP BY customer_id\nORDER BY total DESC;\n```",
	"```js\nconst items = await fetch(`/api/items?limit=%d`).then(r => r.json());\nitems.forEach(i => console.log(i.name));\n```",
	"```bash\nfor f in logs/*.gz; do zcat \"$f\" | grep -c ERROR; done | sort -n | tail -%d\n```",
	"```java\npublic int retries() {\n    return Math.min(this.maxRetries, %d);\n}\n```",
}

var coldLogs = []string{
	"2026-03-%02d 02:00:%02d ERROR export shard=%d: quota exceeded for project acme-prod",
	"2026-03-%02d 02:01:%02d WARN  pool wait %dms exceeds 250ms (active=10 idle=0)",
	"2026-03-%02d 02:02:%02d INFO  retry attempt %d scheduled with jitter",
	"2026-03-%02d 02:03:%02d ERROR DeadlineExceeded after 30s writing to gs://acme-exports/nightly/part-%d",
}

// coldFill replaces every %d / %02d verb of s with small random numbers.
func coldFill(rng *rand.Rand, s string) string {
	n := strings.Count(s, "%d") + strings.Count(s, "%02d")
	if n == 0 {
		return s
	}
	args := make([]any, n)
	for i := range args {
		args[i] = 1 + rng.IntN(90)
	}
	return fmt.Sprintf(s, args...)
}

func coldPick(rng *rand.Rand, pool []string) string {
	return coldFill(rng, pool[rng.IntN(len(pool))])
}

// coldPayload is a pasted document of about n bytes: prose, code or logs.
func coldPayload(rng *rand.Rand, n int) string {
	var b strings.Builder
	kind := rng.IntN(3)
	for b.Len() < n {
		switch kind {
		case 0:
			b.WriteString(coldPick(rng, coldProse))
			b.WriteString(" ")
			if rng.IntN(4) == 0 {
				b.WriteString("\n\n")
			}
		case 1:
			b.WriteString(coldPick(rng, coldCode))
			b.WriteString("\n")
		default:
			b.WriteString(coldPick(rng, coldLogs))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// coldBodies generates n distinct chat bodies of about target bytes.
func coldBodies(tb testing.TB, n, target int) [][]byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(coldSeed, uint64(target)))
	asks := DefaultExamples()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	seen := make(map[string]bool, n)
	out := make([][]byte, 0, n)
	for len(out) < n {
		ask := asks[rng.IntN(len(asks))].Text
		// Most asks carry material: a pasted document before or after the
		// instruction, sized so that long bodies have long asks too.
		if rng.IntN(4) != 0 {
			payload := coldPayload(rng, target/8+rng.IntN(target/3))
			if rng.IntN(2) == 0 {
				ask = ask + "\n\n" + payload
			} else {
				ask = payload + "\n\n" + ask
			}
		}
		msgs := []msg{{"system", coldPick(rng, coldSystemPrompts)}}
		size := len(ask) + len(msgs[0].Content) + 64
		var hist []msg
		for size < target {
			u := coldPick(rng, coldUserTurns)
			if rng.IntN(3) == 0 {
				u += "\n" + coldPayload(rng, 100+rng.IntN(target/6))
			}
			a := coldPick(rng, coldAssistantTurns)
			hist = append(hist, msg{"user", u}, msg{"assistant", a})
			size += len(u) + len(a) + 48
		}
		msgs = append(msgs, hist...)
		msgs = append(msgs, msg{"user", ask})
		body, err := json.Marshal(map[string]any{"model": "auto", "messages": msgs, "max_tokens": 800})
		if err != nil {
			tb.Fatal(err)
		}
		if seen[string(body)] {
			continue
		}
		seen[string(body)] = true
		out = append(out, body)
	}
	return out
}

// coldRequests parses the generated bodies.
func coldRequests(tb testing.TB, target int) []*openai.Request {
	tb.Helper()
	bodies := coldBodies(tb, coldCorpusSize, target)
	reqs := make([]*openai.Request, len(bodies))
	for i, body := range bodies {
		r, err := openai.Parse(body, openai.ShapeChat, 64)
		if err != nil {
			tb.Fatal(err)
		}
		reqs[i] = r
	}
	return reqs
}

// coldExtractions extracts every generated body once (each its own buffer).
func coldExtractions(tb testing.TB, target int) []*Extraction {
	tb.Helper()
	reqs := coldRequests(tb, target)
	xs := make([]*Extraction, len(reqs))
	for i, r := range reqs {
		xs[i] = new(Extraction)
		xs[i].Extract(r, config.DefaultMaxClassifierChars)
	}
	return xs
}

func TestColdCorpus(t *testing.T) {
	for _, sz := range coldSizes {
		t.Run(sz.name, func(t *testing.T) {
			reqs := coldRequests(t, sz.target)
			if len(reqs) != coldCorpusSize {
				t.Fatalf("%d bodies, want %d", len(reqs), coldCorpusSize)
			}
			total, asks := 0, map[string]bool{}
			for _, r := range reqs {
				total += len(r.Body)
				var x Extraction
				x.Extract(r, config.DefaultMaxClassifierChars)
				if x.LastUserLen == 0 {
					t.Fatal("generated body without a user turn")
				}
				asks[string(x.LastUser())] = true
			}
			mean := total / len(reqs)
			if mean < sz.target*3/4 || mean > sz.target*3/2 {
				t.Fatalf("mean body %d bytes, want about %d", mean, sz.target)
			}
			if len(asks) < coldCorpusSize*9/10 {
				t.Fatalf("only %d distinct asks in %d bodies", len(asks), len(reqs))
			}
		})
	}
}

// BenchmarkColdClassify is BenchmarkClassify over distinct bodies.
func BenchmarkColdClassify(b *testing.B) {
	c := testClassifier(b)
	for _, sz := range coldSizes {
		b.Run(sz.name, func(b *testing.B) {
			xs := coldExtractions(b, sz.target)
			type input struct{ ask, ctx []byte }
			in := make([]input, len(xs))
			for i, x := range xs {
				in[i].ask, in[i].ctx = intentInput(x)
			}
			var f featBuf
			b.ReportAllocs()
			done := reportCPU(b)
			i := 0
			for b.Loop() {
				c.classify(&f, in[i].ask, in[i].ctx)
				i = (i + 1) % len(in)
			}
			done()
		})
	}
}

// BenchmarkColdComplexity is BenchmarkComplexity over distinct bodies.
func BenchmarkColdComplexity(b *testing.B) {
	for _, sz := range coldSizes {
		b.Run(sz.name, func(b *testing.B) {
			xs := coldExtractions(b, sz.target)
			b.ReportAllocs()
			done := reportCPU(b)
			i := 0
			for b.Loop() {
				ComplexityOf(xs[i])
				i = (i + 1) % len(xs)
			}
			done()
		})
	}
}

// BenchmarkColdKeywords is BenchmarkKeywords over distinct bodies.
func BenchmarkColdKeywords(b *testing.B) {
	k, err := NewKeywords(testSnapshot(b, nil).Config.Routing.Keywords)
	if err != nil {
		b.Fatal(err)
	}
	for _, sz := range coldSizes {
		b.Run(sz.name, func(b *testing.B) {
			xs := coldExtractions(b, sz.target)
			var lower []byte
			var sig, rules []string
			b.ReportAllocs()
			done := reportCPU(b)
			i := 0
			for b.Loop() {
				sig, rules = k.Match(xs[i].Text, &lower, sig[:0], rules[:0])
				i = (i + 1) % len(xs)
			}
			done()
		})
	}
}

// BenchmarkColdCompute is the whole signal pass without the intent cache
// over distinct bodies.
func BenchmarkColdCompute(b *testing.B) {
	e := newTestEngine(b, func(c *config.Config) { c.Classifier.CacheSize = 0 }, Options{})
	for _, sz := range coldSizes {
		b.Run(sz.name, func(b *testing.B) {
			reqs := coldRequests(b, sz.target)
			var s Signals
			ctx := context.Background()
			for _, r := range reqs { // warm the pools
				if err := e.Compute(ctx, r, &s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			done := reportCPU(b)
			i := 0
			for b.Loop() {
				_ = e.Compute(ctx, reqs[i], &s)
				i = (i + 1) % len(reqs)
			}
			done()
		})
	}
}
