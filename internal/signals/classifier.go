package signals

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// The embedded intent classifier: a multinomial logistic regression over
// hashed word and character n-gram features (features.go), trained at
// start-up from labelled example utterances: the shipped set in
// data/intents.jsonl plus the operator's examples. Softmax confidences are
// calibrated by temperature scaling fitted on out-of-fold predictions. No
// weights are shipped or downloaded: the examples are the model.

//go:embed data/intents.jsonl
var defaultExamplesJSONL []byte

// numIntents is len(config.Intents); the arrays below are sized by it.
const numIntents = 12

// Training hyper-parameters, chosen by cross-validation on the shipped set.
const (
	trainEpochs  = 8
	trainRate    = 0.2
	trainL2      = 1e-5
	trainSeed    = 0x5717c4
	calibFolds   = 4
	adagradDelta = 1e-6
)

// Example is one labelled utterance.
type Example struct {
	Intent string `json:"intent"`
	Text   string `json:"text"`
}

// DefaultExamples returns the shipped training set.
func DefaultExamples() []Example {
	ex, err := ParseExamples(bytes.NewReader(defaultExamplesJSONL), "data/intents.jsonl")
	if err != nil {
		panic(err) // the embedded file is checked by tests; unreachable
	}
	return ex
}

// ParseExamples reads JSONL lines {"intent": ..., "text": ...}; blank lines
// and lines starting with '#' are skipped. Unknown intents and empty texts
// are errors naming the line.
func ParseExamples(r io.Reader, source string) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var e Example
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, line, err)
		}
		if intentIndex(e.Intent) < 0 {
			return nil, fmt.Errorf("%s:%d: unknown intent %q", source, line, e.Intent)
		}
		if len(bytes.TrimSpace([]byte(e.Text))) == 0 {
			return nil, fmt.Errorf("%s:%d: empty text", source, line)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, nil
}

func intentIndex(name string) int { return slices.Index(config.Intents, name) }

// ErrNoExamples is returned when an intent has no training example.
var ErrNoExamples = errors.New("intent has no training examples")

// model is a trained multinomial logistic regression.
//
// For inference the hashed-feature weights are quantised to int8 with one
// scale for the whole matrix and stored biased by 128 (as uint8), one
// 16-byte row per feature: the first word holds classes 0-7, one per byte,
// the second classes 8-11 spread one per 16-bit lane. A request's
// features are summed with SWAR arithmetic in 16-bit lanes (see sum):
// three additions per feature instead of twelve. The rounding error
// (±scale/2 per weight, averaging out over a request's features) is far
// below the logit differences that matter; the held-out test measures the
// quantised model.
type model struct {
	w      []float32           // numDims rows of numIntents weights (training only)
	q      *[hashDim][2]uint64 // biased quantised weights, one row per hashed feature
	qscale float32
	hand   [numHand][numIntents]float32
	b      [numIntents]float32
	temp   float32 // softmax temperature (calibration)
}

// qBias is added to the int8 weights so that they sum as unsigned bytes.
const qBias = 128

// quantize fills q, qscale and hand from w and drops w.
func (m *model) quantize() {
	var mx float32
	for _, v := range m.w[:hashDim*numIntents] {
		mx = max(mx, v, -v)
	}
	m.qscale = mx / 127
	if m.qscale == 0 {
		m.qscale = 1
	}
	m.q = new([hashDim][2]uint64)
	for i := range hashDim {
		var row [numIntents]uint64
		for k := range numIntents {
			row[k] = uint64(int64(math.Round(float64(m.w[i*numIntents+k]/m.qscale))) + qBias)
		}
		m.q[i][0] = row[0] | row[1]<<8 | row[2]<<16 | row[3]<<24 | row[4]<<32 | row[5]<<40 | row[6]<<48 | row[7]<<56
		m.q[i][1] = row[8] | row[9]<<16 | row[10]<<32 | row[11]<<48
	}
	for j := range numHand {
		copy(m.hand[j][:], m.w[(hashDim+j)*numIntents:])
	}
	m.w = nil
}

// Classifier is the embedded intent classifier. It is immutable after
// NewClassifier and safe for concurrent use.
type Classifier struct {
	m       *model
	minConf float64
	hash    uint64 // of the training examples
	pool    sync.Pool
}

// Intent is a classification result.
type Intent struct {
	Name       string  // one of config.Intents, or UnknownIntent
	Confidence float64 // calibrated probability of the top intent
}

// NewClassifier trains a classifier on examples. Predictions whose
// calibrated confidence is below minConf are reported as UnknownIntent.
func NewClassifier(examples []Example, minConf float64) (*Classifier, error) {
	counts := make([]int, numIntents)
	for _, e := range examples {
		i := intentIndex(e.Intent)
		if i < 0 {
			return nil, fmt.Errorf("example %q: unknown intent %q", truncateForError(e.Text), e.Intent)
		}
		counts[i]++
	}
	for i, n := range counts {
		if n == 0 {
			return nil, fmt.Errorf("%s: %w", config.Intents[i], ErrNoExamples)
		}
	}
	samples := featurize(examples)
	// The final model and the calibration folds are independent: train
	// them side by side (start-up and reload latency, not throughput).
	var m *model
	var wg sync.WaitGroup
	wg.Go(func() { m = train(samples, counts) })
	temp := fitTemperature(samples)
	wg.Wait()
	m.temp = temp
	m.quantize()
	c := &Classifier{m: m, minConf: minConf, hash: ExamplesHash(examples)}
	c.pool.New = func() any { return new(featBuf) }
	return c, nil
}

// ExamplesHash identifies a training set, so a model can be reused across
// config reloads that did not change the examples.
func ExamplesHash(examples []Example) uint64 {
	h := fnv.New64a()
	var n [8]byte
	for _, e := range examples {
		binary.LittleEndian.PutUint64(n[:], uint64(len(e.Intent)))
		h.Write(n[:])
		h.Write([]byte(e.Intent))
		binary.LittleEndian.PutUint64(n[:], uint64(len(e.Text)))
		h.Write(n[:])
		h.Write([]byte(e.Text))
	}
	return h.Sum64()
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:runeCut([]byte(s), 40)] + "…"
	}
	return s
}

// withMinConf returns a classifier sharing c's trained model with another
// confidence threshold.
func (c *Classifier) withMinConf(minConf float64) *Classifier {
	if minConf == c.minConf {
		return c
	}
	n := &Classifier{m: c.m, minConf: minConf, hash: c.hash}
	n.pool.New = func() any { return new(featBuf) }
	return n
}

// Classify classifies one text (the ask itself, no context).
func (c *Classifier) Classify(text string) Intent {
	f := c.pool.Get().(*featBuf)
	defer c.pool.Put(f)
	return c.classify(f, []byte(text), nil)
}

// classify classifies ask, with context contributing at contextScale.
// f is scratch space.
func (c *Classifier) classify(f *featBuf, ask, context []byte) Intent {
	var p [numIntents]float32
	c.probs(f, ask, context, &p)
	best := 0
	for k := 1; k < numIntents; k++ {
		if p[k] > p[best] {
			best = k
		}
	}
	conf := float64(p[best])
	if conf < c.minConf {
		return Intent{Name: UnknownIntent, Confidence: conf}
	}
	return Intent{Name: config.Intents[best], Confidence: conf}
}

// probs computes calibrated class probabilities into p.
func (c *Classifier) probs(f *featBuf, ask, context []byte, p *[numIntents]float32) {
	f.reset()
	f.add(ask, 1, true)
	if len(context) > 0 {
		f.add(context[:runeCut(context, contextBytes)], contextScale, false)
	}
	c.m.logits(f, p)
	softmax(p, c.m.temp)
}

// logits computes the raw class scores of the features in f.
func (m *model) logits(f *featBuf, z *[numIntents]float32) {
	*z = m.b
	scale := f.scaleFactor() * m.qscale
	start := 0
	for _, g := range f.groups {
		acc := m.sum(f.idx[start:g.end])
		v := g.v * scale
		for k := range z {
			z[k] += v * float32(acc[k])
		}
		start = g.end
	}
	for j, hv := range f.hand {
		if hv == 0 {
			continue
		}
		for k := range z {
			z[k] += hv * m.hand[j][k]
		}
	}
}

// lanes16 selects the even bytes of a word as four 16-bit lanes.
const lanes16 = 0x00ff00ff00ff00ff

// sumChunk bounds the features summed in 16-bit lanes before they are
// flushed: 256 biased bytes of at most 255 fit in 16 bits.
const sumChunk = 256

// sum returns the quantised weight sums of the rows idx, per class.
func (m *model) sum(idx []uint32) [numIntents]int32 {
	var acc [numIntents]int32
	q := m.q
	for len(idx) > 0 {
		chunk := idx[:min(len(idx), sumChunk)]
		idx = idx[len(chunk):]
		var even, odd, hi uint64 // classes 0,2,4,6 / 1,3,5,7 / 8-11
		for _, i := range chunk {
			row := &q[i&(hashDim-1)] // always in range; no bounds check
			even += row[0] & lanes16
			odd += row[0] >> 8 & lanes16
			hi += row[1]
		}
		bias := int32(len(chunk) * qBias)
		for l := range 4 {
			acc[2*l] += int32(even>>(16*l)&0xffff) - bias
			acc[2*l+1] += int32(odd>>(16*l)&0xffff) - bias
			acc[8+l] += int32(hi>>(16*l)&0xffff) - bias
		}
	}
	return acc
}

// softmax turns logits into probabilities in place at temperature t.
func softmax(z *[numIntents]float32, t float32) {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for k, v := range z {
		e := float32(math.Exp(float64((v - mx) / t)))
		z[k] = e
		sum += e
	}
	for k := range z {
		z[k] /= sum
	}
}

// sample is one training example as a sparse vector.
type sample struct {
	idx   []uint32
	val   []float32
	label int
}

func featurize(examples []Example) []sample {
	var f featBuf
	out := make([]sample, len(examples))
	for i, e := range examples {
		f.reset()
		f.add([]byte(e.Text), 1, true)
		scale := f.scaleFactor()
		s := sample{label: intentIndex(e.Intent)}
		start := 0
		for _, g := range f.groups {
			for _, idx := range f.idx[start:g.end] {
				s.idx = append(s.idx, idx)
				s.val = append(s.val, g.v*scale)
			}
			start = g.end
		}
		for j, hv := range f.hand {
			if hv != 0 {
				s.idx = append(s.idx, uint32(hashDim+j))
				s.val = append(s.val, hv)
			}
		}
		out[i] = s
	}
	return out
}

// train fits the weights with SGD on the softmax cross-entropy, classes
// weighted inversely to their frequency so that an operator who adds many
// examples of one intent does not shift every prior towards it. The step
// size is row-wise AdaGrad: one squared-gradient sum per feature (not per
// weight), which keeps rare n-grams learning fast at one square root per
// feature instead of one per weight.
func train(samples []sample, counts []int) *model {
	const stride = numIntents + 1 // weights, then the row's gradient sum
	wg := make([]float32, numDims*stride)
	m := &model{temp: 1}
	var gb2 [numIntents]float32
	cw := classWeights(counts, len(samples))
	order := make([]int, len(samples))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(trainSeed, uint64(len(samples))))
	var z [numIntents]float32
	for range trainEpochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, si := range order {
			s := &samples[si]
			z = m.b
			for n, idx := range s.idx {
				x := s.val[n]
				row := (*[stride]float32)(wg[int(idx)*stride:])
				for k := range z {
					z[k] += x * row[k]
				}
			}
			softmax(&z, 1)
			w := cw[s.label]
			var gg float32
			for k := range z {
				z[k] *= w // z is now the gradient of the loss wrt the logits
			}
			z[s.label] -= w
			for k, g := range z {
				gb2[k] += g * g
				m.b[k] -= trainRate * g / float32(math.Sqrt(float64(gb2[k])+adagradDelta))
				gg += g * g
			}
			gg /= numIntents
			for n, idx := range s.idx {
				x := s.val[n]
				row := (*[stride]float32)(wg[int(idx)*stride:])
				row[numIntents] += gg * x * x
				rate := trainRate / float32(math.Sqrt(float64(row[numIntents])+adagradDelta))
				for k, g := range z {
					row[k] -= rate * (g*x + trainL2*row[k])
				}
			}
		}
	}
	m.w = make([]float32, numDims*numIntents)
	for i := range numDims {
		copy(m.w[i*numIntents:(i+1)*numIntents], wg[i*stride:i*stride+numIntents])
	}
	return m
}

func classWeights(counts []int, n int) []float32 {
	w := make([]float32, len(counts))
	for i, c := range counts {
		if c > 0 {
			w[i] = float32(n) / float32(len(counts)*c)
		}
	}
	return w
}

func (m *model) sparseLogits(s *sample, z *[numIntents]float32) {
	*z = m.b
	for n, idx := range s.idx {
		x := s.val[n]
		row := (*[numIntents]float32)(m.w[int(idx)*numIntents:])
		for k := range z {
			z[k] += x * row[k]
		}
	}
}

// fitTemperature trains calibFolds models, each without one fold, collects
// the logits of every example from the model that did not see it, and
// returns the temperature minimising their negative log-likelihood.
func fitTemperature(samples []sample) float32 {
	folds := make([]int, len(samples))
	rng := rand.New(rand.NewPCG(trainSeed+1, uint64(len(samples))))
	for i := range folds {
		folds[i] = rng.IntN(calibFolds)
	}
	logits := make([][numIntents]float32, len(samples))
	var wg sync.WaitGroup
	for fold := range calibFolds {
		wg.Go(func() {
			var tr []sample
			fc := make([]int, numIntents)
			for i, s := range samples {
				if folds[i] != fold {
					tr = append(tr, s)
					fc[s.label]++
				}
			}
			m := train(tr, fc)
			for i := range samples {
				if folds[i] == fold { // each fold writes only its own rows
					m.sparseLogits(&samples[i], &logits[i])
				}
			}
		})
	}
	wg.Wait()
	nll := func(t float64) float64 {
		var sum float64
		for i, z := range logits {
			p := z
			softmax(&p, float32(t))
			sum -= math.Log(math.Max(float64(p[samples[i].label]), 1e-12))
		}
		return sum
	}
	// Golden-section search over log t in [log 0.05, log 20].
	lo, hi := math.Log(0.05), math.Log(20)
	const phi = 0.6180339887498949
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(math.Exp(a)), nll(math.Exp(b))
	for range 40 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(math.Exp(b))
		}
	}
	return float32(math.Exp((lo + hi) / 2))
}
