package signals

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Floors for the held-out evaluation (testdata/heldout.jsonl, never used
// for training). Measured: see README "Signals"; the floors sit a few
// points below so that honest changes to the examples do not flap.
const (
	heldoutAccuracyFloor = 0.85
	// Calibration: expected calibration error over 10 bins.
	heldoutECEMax = 0.08
)

var (
	defaultClassifierOnce sync.Once
	defaultClassifier     *Classifier
)

// testClassifier trains the shipped model once per test binary.
func testClassifier(t testing.TB) *Classifier {
	t.Helper()
	defaultClassifierOnce.Do(func() {
		c, err := NewClassifier(DefaultExamples(), config.DefaultMinConfidence)
		if err != nil {
			panic(err)
		}
		defaultClassifier = c
	})
	return defaultClassifier
}

func loadHeldout(t testing.TB) []Example {
	t.Helper()
	f, err := os.Open("testdata/heldout.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ex, err := ParseExamples(f, "testdata/heldout.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestIntentsMatchConfig(t *testing.T) {
	if len(config.Intents) != numIntents {
		t.Fatalf("numIntents = %d, config.Intents has %d", numIntents, len(config.Intents))
	}
}

func TestShippedExamples(t *testing.T) {
	ex := DefaultExamples()
	per := map[string]int{}
	seen := map[string]bool{}
	for _, e := range ex {
		per[e.Intent]++
		if seen[e.Text] {
			t.Errorf("duplicate example %q", e.Text)
		}
		seen[e.Text] = true
	}
	for _, in := range config.Intents {
		if per[in] < 40 {
			t.Errorf("intent %s has %d examples, want >= 40", in, per[in])
		}
	}
	for _, h := range loadHeldout(t) {
		if seen[h.Text] {
			t.Errorf("held-out example %q is also a training example", h.Text)
		}
	}
}

// TestHeldoutAccuracy is the accuracy and calibration gate of the shipped
// classifier, measured on examples it never saw.
func TestHeldoutAccuracy(t *testing.T) {
	c := testClassifier(t).withMinConf(0) // measure the raw argmax
	held := loadHeldout(t)
	per := map[string]int{}
	for _, h := range held {
		per[h.Intent]++
	}
	for _, in := range config.Intents {
		if per[in] < 10 {
			t.Fatalf("held-out set has %d examples of %s, want >= 10", per[in], in)
		}
	}
	correct := 0
	var kept, keptRight int // at the default min_confidence
	var confRight, confWrong float64
	var nWrong int
	const bins = 10
	var binN [bins]int
	var binConf, binAcc [bins]float64
	confusion := map[string]int{}
	for _, h := range held {
		got := c.Classify(h.Text)
		ok := got.Name == h.Intent
		if got.Confidence >= config.DefaultMinConfidence {
			kept++
			if ok {
				keptRight++
			}
		}
		b := min(int(got.Confidence*bins), bins-1)
		binN[b]++
		binConf[b] += got.Confidence
		if ok {
			correct++
			confRight += got.Confidence
			binAcc[b]++
		} else {
			nWrong++
			confWrong += got.Confidence
			confusion[h.Intent+"→"+got.Name]++
			t.Logf("miss: want %-9s got %-9s %.2f %q", h.Intent, got.Name, got.Confidence, clip(h.Text, 70))
		}
	}
	acc := float64(correct) / float64(len(held))
	var ece float64
	for b := range bins {
		if binN[b] > 0 {
			ece += float64(binN[b]) / float64(len(held)) * abs(binAcc[b]/float64(binN[b])-binConf[b]/float64(binN[b]))
		}
	}
	meanRight := confRight / float64(max(correct, 1))
	meanWrong := confWrong / float64(max(nWrong, 1))
	keptAcc := float64(keptRight) / float64(max(kept, 1))
	t.Logf("held-out accuracy %.3f (%d/%d), mean confidence correct %.3f wrong %.3f, ECE %.3f; "+
		"at min_confidence %.2f: %.1f%% answered, accuracy %.3f",
		acc, correct, len(held), meanRight, meanWrong, ece,
		config.DefaultMinConfidence, 100*float64(kept)/float64(len(held)), keptAcc)
	keys := make([]string, 0, len(confusion))
	for k := range confusion {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("confusion %s: %d", k, confusion[k])
	}
	if acc < heldoutAccuracyFloor {
		t.Errorf("held-out accuracy %.3f below floor %.2f", acc, heldoutAccuracyFloor)
	}
	if nWrong > 0 && meanWrong >= meanRight {
		t.Errorf("wrong predictions are as confident (%.3f) as right ones (%.3f)", meanWrong, meanRight)
	}
	if keptAcc < acc {
		t.Errorf("confident predictions (%.3f) are no more accurate than all (%.3f)", keptAcc, acc)
	}
	if ece > heldoutECEMax {
		t.Errorf("expected calibration error %.3f above %.2f", ece, heldoutECEMax)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:runeCut([]byte(s), n)] + "…"
	}
	return s
}

func TestClassifierMinConfidence(t *testing.T) {
	c := testClassifier(t)
	tests := []struct {
		name    string
		minConf float64
		text    string
		want    string
	}{
		{"clear ask passes", 0.3, "Translate 'good night' into Spanish.", "translate"},
		{"gibberish is unsure", 0.6, "qzx vvv kkkp", UnknownIntent},
	}
	vague := "Can you help me with this one?"
	tests = append(tests, struct {
		name    string
		minConf float64
		text    string
		want    string
	}{"just above its confidence", c.withMinConf(0).Classify(vague).Confidence + 1e-6, vague, UnknownIntent})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.withMinConf(tt.minConf).Classify(tt.text)
			if got.Name != tt.want {
				t.Fatalf("Classify(%q) at min %.3f = %+v, want %s", tt.text, tt.minConf, got, tt.want)
			}
			if got.Confidence <= 0 || got.Confidence > 1 {
				t.Fatalf("confidence %v out of (0,1]", got.Confidence)
			}
		})
	}
}

func TestOperatorExamplesTeach(t *testing.T) {
	// A house-specific phrase the shipped set cannot know: adding examples
	// must move it to the intended intent.
	const probe = "run the zorblax on ticket 4411"
	base := DefaultExamples()
	before := testClassifier(t).withMinConf(0)
	extra := slices.Clone(base)
	for i := range 12 {
		extra = append(extra, Example{Intent: "classify", Text: fmt.Sprintf("run the zorblax on ticket %d", 1000+i*37)})
		extra = append(extra, Example{Intent: "classify", Text: fmt.Sprintf("zorblax this ticket please (#%d)", 77+i)})
	}
	after, err := NewClassifier(extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Classify(probe), after.Classify(probe)
	if a.Name != "classify" {
		t.Fatalf("after training on operator examples: %+v (before %+v)", a, b)
	}
	if b.Name == "classify" && a.Confidence <= b.Confidence {
		t.Fatalf("operator examples did not raise confidence: before %+v after %+v", b, a)
	}
}

func TestNewClassifierErrors(t *testing.T) {
	tests := []struct {
		name string
		ex   []Example
	}{
		{"unknown intent", append(DefaultExamples(), Example{Intent: "astrology", Text: "x"})},
		{"missing intent", []Example{{Intent: "qa", Text: "what is x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewClassifier(tt.ex, 0.5); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestParseExamples(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr string
	}{
		{"ok with comments", "# c\n\n{\"intent\":\"qa\",\"text\":\"who?\"}\n", 1, ""},
		{"bad json", "{\"intent\":\"qa\",\n", 0, "x.jsonl:1"},
		{"unknown intent", "{\"intent\":\"qa\",\"text\":\"a\"}\n{\"intent\":\"nope\",\"text\":\"b\"}\n", 0, "x.jsonl:2: unknown intent"},
		{"empty text", "{\"intent\":\"qa\",\"text\":\"  \"}\n", 0, "empty text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := ParseExamples(strings.NewReader(tt.in), "x.jsonl")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(ex) != tt.n {
				t.Fatalf("got %d, %v", len(ex), err)
			}
		})
	}
}

func TestClassifyContextIsSecondary(t *testing.T) {
	c := testClassifier(t).withMinConf(0)
	var f featBuf
	ask := []byte("Translate this into German: the invoice is attached.")
	ctx := []byte("You are a senior Go engineer. Write code, fix bugs, review pull requests.")
	got := c.classify(&f, ask, ctx)
	if got.Name != "translate" {
		t.Fatalf("context overrode the ask: %+v", got)
	}
	// Context still counts when the ask is vague.
	vague := []byte("ok do it for the second one too")
	withCtx := c.classify(&f, vague, []byte("Translate each of these product names into Japanese: kettle, toaster."))
	var p1, p2 [numIntents]float32
	c.probs(&f, vague, nil, &p1)
	c.probs(&f, vague, []byte("Translate each of these product names into Japanese: kettle, toaster."), &p2)
	ti := intentIndex("translate")
	if p2[ti] <= p1[ti] {
		t.Fatalf("context did not raise translate: %v -> %v (%+v)", p1[ti], p2[ti], withCtx)
	}
}

func TestClassifierDeterministic(t *testing.T) {
	// A small subset keeps this cheap under -race.
	var sub []Example
	per := map[string]int{}
	for _, e := range DefaultExamples() {
		if per[e.Intent] < 8 {
			per[e.Intent]++
			sub = append(sub, e)
		}
	}
	a, err := NewClassifier(sub, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewClassifier(sub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.hash != b.hash || a.m.temp != b.m.temp || a.m.qscale != b.m.qscale || *a.m.q != *b.m.q {
		t.Fatal("training twice on the same examples gave different models")
	}
}

// TestModelSum checks the SWAR row sums against plain int8 arithmetic,
// with extreme weights and more features than one 16-bit chunk holds.
func TestModelSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	m := &model{w: make([]float32, numDims*numIntents)}
	for i := range m.w {
		switch rng.IntN(4) {
		case 0:
			m.w[i] = 1 // the largest weight: +127
		case 1:
			m.w[i] = -1 // -127
		default:
			m.w[i] = rng.Float32()*2 - 1
		}
	}
	want := make([]int8, hashDim*numIntents)
	scale := float32(1) / 127 // quantize's scale: the largest |weight| is 1
	for i, v := range m.w[:hashDim*numIntents] {
		want[i] = int8(math.Round(float64(v / scale)))
	}
	m.quantize()
	for _, n := range []int{0, 1, 255, 256, 257, 1000, 3 * sumChunk} {
		idx := make([]uint32, n)
		for i := range idx {
			idx[i] = uint32(rng.IntN(hashDim))
			if i%3 == 0 {
				idx[i] = 7 // repeated rows
			}
		}
		var naive [numIntents]int32
		for _, i := range idx {
			for k := range numIntents {
				naive[k] += int32(want[int(i)*numIntents+k])
			}
		}
		if got := m.sum(idx); got != naive {
			t.Fatalf("%d features: sum %v, want %v", n, got, naive)
		}
	}
}
