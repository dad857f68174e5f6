package signals

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Cross-validation on the shipped examples (data/intents.jsonl): the
// protocol for choosing features and training settings. The held-out set
// (testdata/heldout.jsonl) is only for checking the choice, never for
// making it. Slow-ish (trains cvFolds×cvRepeats models), so it only runs
// when asked:
//
//	SWITCHYARD_CV=1 go test -run TestIntentCrossValidation -v ./internal/signals/

const (
	cvFolds   = 5
	cvRepeats = 2
)

type cvResult struct {
	acc, ece, conf float64 // accuracy, calibration error, mean confidence
	n              int
}

// crossValidate runs stratified k-fold CV of NewClassifier over examples.
func crossValidate(tb testing.TB, examples []Example, folds, repeats int) cvResult {
	tb.Helper()
	const bins = 10
	var binN [bins]int
	var binConf, binAcc [bins]float64
	correct, total := 0, 0
	var confSum float64
	for rep := range repeats {
		rng := rand.New(rand.NewPCG(uint64(0xc5+rep), 7))
		fold := make([]int, len(examples))
		byIntent := map[string][]int{}
		for i, e := range examples {
			byIntent[e.Intent] = append(byIntent[e.Intent], i)
		}
		for _, in := range config.Intents {
			idx := byIntent[in]
			rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
			off := rng.IntN(folds)
			for k, i := range idx {
				fold[i] = (k + off) % folds
			}
		}
		for f := range folds {
			var train, test []Example
			for i, e := range examples {
				if fold[i] == f {
					test = append(test, e)
				} else {
					train = append(train, e)
				}
			}
			c, err := NewClassifier(train, 0)
			if err != nil {
				tb.Fatal(err)
			}
			for _, e := range test {
				got := c.Classify(e.Text)
				ok := got.Name == e.Intent
				b := min(int(got.Confidence*bins), bins-1)
				binN[b]++
				binConf[b] += got.Confidence
				confSum += got.Confidence
				total++
				if ok {
					correct++
					binAcc[b]++
				}
			}
		}
	}
	var ece float64
	for b := range bins {
		if binN[b] > 0 {
			ece += float64(binN[b]) / float64(total) * abs(binAcc[b]/float64(binN[b])-binConf[b]/float64(binN[b]))
		}
	}
	return cvResult{acc: float64(correct) / float64(total), ece: ece, conf: confSum / float64(total), n: total}
}

func TestIntentCrossValidation(t *testing.T) {
	if os.Getenv("SWITCHYARD_CV") == "" {
		t.Skip("set SWITCHYARD_CV=1 to run the cross-validation")
	}
	r := crossValidate(t, DefaultExamples(), cvFolds, cvRepeats)
	t.Logf("%d-fold CV ×%d on the shipped examples: accuracy %.3f, mean confidence %.3f, ECE %.3f (%d predictions)",
		cvFolds, cvRepeats, r.acc, r.conf, r.ece, r.n)
}
