package pii

import (
	"testing"

	"github.com/switchyard-llm/switchyard/internal/benchcpu"
)

// The hot benchmark (BenchmarkScan) scans one text over and over, so the text
// and every table stay in L1 and the branch predictor learns the text. Under
// load each request brings new text. BenchmarkScanCold cycles through
// distinct generated prompts (4 MB per 16 KB variant, 1 MB per 2 KB variant)
// so that text is never cache-hot and branches are not memorised.

const (
	coldDocs2K  = 512
	coldDocs16K = 256
)

func BenchmarkScanCold(b *testing.B) {
	s, err := NewScanner(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
		docs int
	}{{"2KB", 2048, coldDocs2K}, {"16KB", 16384, coldDocs16K}} {
		for _, variant := range []struct {
			name string
			pii  bool
		}{{"clean", false}, {"pii", true}} {
			docs := benchCorpus(size.docs, size.n, variant.pii)
			b.Run(size.name+"/"+variant.name, func(b *testing.B) {
				dst := make([]Finding, 0, int(numTypes))
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					dst = s.Scan(docs[i], dst[:0])
					i++
					if i == len(docs) {
						i = 0
					}
				}
			})
		}
	}
}

// BenchmarkScanVsOracle runs the scanner (impl=new) and the pre-optimisation
// oracle (impl=old) back to back on each input, so that both see about the
// same machine load; compare with benchstat -col /impl. Besides wall time it
// reports the scanning thread's CPU time (cpu-ns/op, where the platform has
// a thread clock), which leaves out the time spent waiting for a CPU on a
// shared machine.
func BenchmarkScanVsOracle(b *testing.B) {
	s, err := NewScanner(nil)
	if err != nil {
		b.Fatal(err)
	}
	o, err := orcNewScanner(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
		docs int
	}{{"2KB", 2048, coldDocs2K}, {"16KB", 16384, coldDocs16K}} {
		for _, kind := range []string{"prose", "clean", "pii"} {
			for _, temp := range []string{"hot", "cold"} {
				var docs []string
				switch {
				case kind == "prose" && temp == "hot":
					docs = proseCorpus(1, size.n)
				case kind == "prose":
					docs = proseCorpus(size.docs, size.n)
				case temp == "hot":
					docs = []string{benchText(size.n, kind == "pii")}
				default:
					docs = benchCorpus(size.docs, size.n, kind == "pii")
				}
				name := "case=" + temp + "-" + size.name + "-" + kind
				b.Run(name+"/impl=old", func(b *testing.B) {
					dst := make([]orcFinding, 0, int(numTypes))
					measureCPU(b, size.n, func(i int) { dst = o.Scan(docs[i%len(docs)], dst[:0]) })
				})
				b.Run(name+"/impl=new", func(b *testing.B) {
					dst := make([]Finding, 0, int(numTypes))
					measureCPU(b, size.n, func(i int) { dst = s.Scan(docs[i%len(docs)], dst[:0]) })
				})
			}
		}
	}
}

// measureCPU runs scan(0), scan(1), ... in b.Loop and adds the thread CPU
// time per call as the cpu-ns/op metric.
func measureCPU(b *testing.B, size int, scan func(i int)) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := benchcpu.Start()
	i := 0
	for b.Loop() {
		scan(i)
		i++
	}
	cpu.Report(b, i)
}

// TestColdCorpus checks that the cold benchmark measures what it claims:
// distinct documents, clean ones without findings, dense ones with several
// findings per kilobyte of every personal-data kind.
func TestColdCorpus(t *testing.T) {
	for i, doc := range proseCorpus(32, 2048) {
		if got := counts(t, doc); len(got) != 0 {
			t.Errorf("prose document %d has findings %v", i, got)
		}
	}
	for _, size := range []int{2048, 16384} {
		n := 64
		clean := benchCorpus(n, size, false)
		dense := benchCorpus(n, size, true)
		seen := map[string]bool{}
		total := 0
		types := map[string]int{}
		for i := range n {
			if len(clean[i]) != size || len(dense[i]) != size {
				t.Fatalf("document length %d/%d, want %d", len(clean[i]), len(dense[i]), size)
			}
			if seen[clean[i]] || seen[dense[i]] {
				t.Fatalf("%d-byte corpus repeats a document", size)
			}
			seen[clean[i]], seen[dense[i]] = true, true
			if got := counts(t, clean[i]); len(got) != 0 {
				t.Errorf("clean %d-byte document %d has findings %v", size, i, got)
			}
			for ty, c := range counts(t, dense[i]) {
				total += c
				types[ty] += c
			}
		}
		perKB := float64(total) / float64(n*size/1024)
		if perKB < 3 {
			t.Errorf("dense %d-byte corpus: %.1f findings per KB, want >= 3", size, perKB)
		}
		for _, ty := range []string{Email, Phone, CreditCard, IBAN, SSN, IPv4, IPv6, APIKey, JWT, Secret} {
			if types[ty] == 0 {
				t.Errorf("dense %d-byte corpus has no %s", size, ty)
			}
		}
		t.Logf("%d-byte dense corpus: %.1f findings/KB %v", size, perKB, types)
	}
}
