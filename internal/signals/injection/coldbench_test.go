package injection

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/benchcpu"
	"github.com/switchyard-llm/switchyard/internal/signals/injection/internal/oracle"
)

// BenchmarkScoreCold is BenchmarkScore without the repetition: it cycles
// through coldTexts distinct prompts per size (fixed seed), so that the
// branch predictors cannot learn one text and the text itself comes from
// memory, as under real load, where every request is new and other work
// runs in between. Besides wall time it reports the CPU time of the
// benchmarking thread per operation (cpu-ns/op, cpu-MB/s), which is steadier
// on a machine shared with other work.
//
// The prompts recombine sentences of the held-out set, the signal package's
// intent examples and chat bodies, and the benchmark paragraphs (prose,
// code, config, logs, other scripts). "attack" prompts have one held-out
// attack line per KB inserted at random sentence boundaries.

const (
	coldTexts = 256
	coldSeed  = 0x1ec7
)

func coldCorpus(tb testing.TB, size int, attack bool) []string {
	tb.Helper()
	benign, attacks := heldOutLines(tb)
	var pool []string
	pool = append(pool, benign...)
	pool = append(pool, intentTexts(tb)...)
	pool = append(pool, chatContents(tb)[1:]...) // message contents, not the JSON of the first body
	for _, p := range benignParagraphs {
		pool = append(pool, strings.Split(strings.TrimRight(p, "\n"), "\n")...)
	}
	pool = sentences(pool)
	rng := rand.New(rand.NewPCG(coldSeed, uint64(size)))
	seps := []string{" ", " ", " ", "\n", "\n\n"}
	out := make([]string, coldTexts)
	for i := range out {
		var b strings.Builder
		nextAttack := 0
		if attack {
			nextAttack = rng.IntN(1024)
		}
		for b.Len() < size {
			if attack && b.Len() >= nextAttack {
				b.WriteString(attacks[rng.IntN(len(attacks))])
				nextAttack += 1024
			} else {
				b.WriteString(pool[rng.IntN(len(pool))])
			}
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		out[i] = strings.ToValidUTF8(validPrefix(b.String(), size), "")
	}
	return out
}

func BenchmarkScoreCold(b *testing.B) {
	d := New()
	benchCold(b, func(text string, res *Result) { d.ScoreInto(text, res) })
}

// BenchmarkOracleScoreCold runs the same prompts through the frozen
// pre-rewrite scanner (internal/oracle), for a side-by-side comparison under
// the same machine load.
func BenchmarkOracleScoreCold(b *testing.B) {
	var res oracle.Result
	benchCold(b, func(text string, _ *Result) { oracleDetector.ScoreInto(text, &res) })
}

func benchCold(b *testing.B, score func(string, *Result)) {
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 2048}, {"16KB", 16384}} {
		for _, v := range []struct {
			name   string
			attack bool
		}{{"benign", false}, {"attack", true}} {
			texts := coldCorpus(b, size.n, v.attack)
			total := 0
			for _, t := range texts {
				total += len(t)
			}
			b.Run(size.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(total / len(texts)))
				b.ReportAllocs()
				var res Result
				cpu := benchcpu.Start()
				i := 0
				for b.Loop() {
					score(texts[i%coldTexts], &res)
					i++
				}
				if ns, ok := cpu.Report(b, i); ok {
					b.ReportMetric(float64(total/len(texts))/ns*1e3, "cpu-MB/s")
				}
			})
		}
	}
}

// TestColdCorpus checks that the cold-benchmark prompts are what they
// claim: distinct, of the requested size, benign ones mostly clean and
// attack ones caught.
func TestColdCorpus(t *testing.T) {
	d := New()
	for _, size := range []int{2048, 16384} {
		for _, attack := range []bool{false, true} {
			texts := coldCorpus(t, size, attack)
			seen := map[string]bool{}
			hits := 0
			for _, s := range texts {
				if len(s) < size-4 || len(s) > size {
					t.Fatalf("size %d: text of %d bytes", size, len(s))
				}
				seen[s] = true
				if d.Score(s).Score >= attackMin {
					hits++
				}
			}
			if len(seen) != coldTexts {
				t.Errorf("size %d attack=%v: %d distinct texts", size, attack, len(seen))
			}
			t.Logf("size %d attack=%v: %d of %d at or above %.1f", size, attack, hits, len(texts), attackMin)
			if attack && hits < len(texts)*3/4 || !attack && hits > len(texts)/4 {
				t.Errorf("size %d attack=%v: %d of %d texts score >= %.1f", size, attack, hits, len(texts), attackMin)
			}
		}
	}
}

// BenchmarkOracleScore is BenchmarkScore on the frozen pre-rewrite scanner
// (internal/oracle), for a side-by-side comparison under the same load.
func BenchmarkOracleScore(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"200B", 200}, {"2KB", 2048}, {"16KB", 16384}} {
		for _, v := range []struct {
			name   string
			attack bool
		}{{"benign", false}, {"attack", true}} {
			text := benchPrompt(size.n, v.attack)
			b.Run(size.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				for b.Loop() {
					oracleDetector.Score(text)
				}
			})
		}
	}
}
