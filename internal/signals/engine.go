// Package signals computes what Switchyard knows about a request before the
// policy decides: the intent (embedded classifier, optionally a fast LLM),
// a complexity score, keyword rule matches, PII findings and a
// prompt-injection score, plus statistics of the prompt text. Everything is
// built once per config snapshot (Engine) and runs on every request without
// unmarshalling the body and, in steady state, without allocating.
package signals

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals/injection"
)

// Phases reported to Observer.Phase.
const (
	PhaseExtract  = "extract"
	PhaseKeywords = "keywords"
	// PhaseMessages is the per-message pass: complexity, PII and
	// injection of each message, from the message cache when it can.
	PhaseMessages = "messages"
	PhaseIntent   = "intent"
)

// Observer receives measurements of the signal pass (metrics hook). All
// methods must be cheap and safe for concurrent use.
type Observer interface {
	// Phase reports how long one phase of Compute took.
	Phase(phase string, d time.Duration)
	// Classified reports the source of an intent: embedded, llm or cache.
	Classified(source string)
	// CacheLookup reports an intent cache hit or miss.
	CacheLookup(hit bool)
	// MessageCacheLookups reports the message cache lookups of one
	// request (messages shorter than a lookup is worth are not counted).
	MessageCacheLookups(hits, misses int)
	// LLMCall reports the outcome of an attempted LLM classification
	// (LLMOK, LLMTimeout, ...) and its duration (0 when no call was made).
	LLMCall(outcome string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Phase(string, time.Duration)   {}
func (nopObserver) Classified(string)             {}
func (nopObserver) CacheLookup(bool)              {}
func (nopObserver) MessageCacheLookups(int, int)  {}
func (nopObserver) LLMCall(string, time.Duration) {}

// Options are the dependencies of an Engine.
type Options struct {
	Logger *zap.Logger
	// HTTPClient, when set, is used for the LLM classifier instead of one
	// built from classifier.llm (tests). Its Timeout is overridden.
	HTTPClient *http.Client
	// Observer, when set, receives phase timings and classifier outcomes.
	Observer Observer
	// Reuse is the engine this one replaces (config reload). Its trained
	// classifier is reused when the examples are unchanged, and its
	// intent cache when the cache size is unchanged.
	Reuse *Engine
}

// Engine computes Signals for requests under one config snapshot. It is
// immutable after New and safe for concurrent use.
type Engine struct {
	log        *zap.Logger
	obs        Observer
	timed      bool
	maxChars   int
	classifier *Classifier
	keywords   *Keywords
	pii        *pii.Scanner
	injection  *injection.Detector
	llm        *llmClassifier // nil unless classifier.mode is llm
	cache      *intentCache   // nil when disabled
	messages   *messageCache  // nil when disabled
	salt       uint64
	pool       sync.Pool
	closeOnce  sync.Once
}

// ErrBadArgument is returned by Compute for a nil request or output.
var ErrBadArgument = errors.New("signals: nil request or output")

type scratch struct {
	x     Extraction
	m     messageTotals
	f     featBuf
	lower []byte
}

// maxPooledText bounds the buffers a pooled scratch keeps; a rare huge
// request does not pin its memory in the pool.
const maxPooledText = 1 << 20

// New builds everything once: trains (or reuses) the embedded classifier,
// compiles the keyword rules, the PII scanner and the injection detector,
// and prepares the LLM client and the cache.
func New(snap *config.Snapshot, opts Options) (*Engine, error) {
	if snap == nil || snap.Config == nil {
		return nil, errors.New("signals: nil config snapshot")
	}
	cfg := snap.Config
	e := &Engine{log: opts.Logger, obs: opts.Observer, maxChars: cfg.Server.Limits.MaxClassifierChars}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	e.log = e.log.Named("signals")
	if e.obs == nil {
		e.obs = nopObserver{}
	} else {
		e.timed = true
	}
	if e.maxChars <= 0 {
		e.maxChars = config.DefaultMaxClassifierChars
	}
	cl := cfg.Classifier
	// Cheap checks first: a bad reload should fail before training.
	examples, err := trainingExamples(cl)
	if err != nil {
		return nil, err
	}
	if e.keywords, err = NewKeywords(cfg.Routing.Keywords); err != nil {
		return nil, err
	}
	if e.pii, err = pii.NewScanner(cfg.PII.Types); err != nil {
		return nil, fmt.Errorf("pii scanner: %w", err)
	}
	e.injection = injection.New()
	if cl.Mode == "llm" {
		if e.llm, err = newLLMClassifier(snap, Options{Logger: e.log, HTTPClient: opts.HTTPClient}, e.obs); err != nil {
			return nil, err
		}
	}
	if prev := opts.Reuse; prev != nil && prev.classifier != nil && prev.classifier.hash == ExamplesHash(examples) {
		e.classifier = prev.classifier.withMinConf(cl.MinConfidence)
	} else {
		start := time.Now()
		if e.classifier, err = NewClassifier(examples, cl.MinConfidence); err != nil {
			e.Close()
			return nil, fmt.Errorf("train intent classifier: %w", err)
		}
		e.log.Info("trained intent classifier", zap.Int("examples", len(examples)), zap.Duration("took", time.Since(start)))
	}
	if prev := opts.Reuse; prev != nil && prev.cache != nil && prev.cache.size == cl.CacheSize {
		e.cache = prev.cache
	} else if e.cache, err = newIntentCache(cl.CacheSize); err != nil {
		e.Close()
		return nil, fmt.Errorf("intent cache: %w", err)
	}
	// Message scans depend on the text alone (PII counts every type;
	// the types reported are chosen when the counts are turned into
	// findings), so a reload keeps the cache when its size is unchanged.
	mc := cfg.Signals.MessageCacheSize
	if prev := opts.Reuse; prev != nil && prev.messages != nil && prev.messages.size() == mc {
		e.messages = prev.messages
	} else if e.messages, err = newMessageCache(mc); err != nil {
		e.Close()
		return nil, fmt.Errorf("message cache: %w", err)
	}
	e.salt = cacheSalt(e.classifier.hash, cl)
	e.pool.New = func() any { return new(scratch) }
	return e, nil
}

// trainingExamples are the shipped examples, then classifier.examples
// (intents in sorted order, so the set hashes the same every time), then
// classifier.examples_file.
func trainingExamples(cl config.Classifier) ([]Example, error) {
	ex := DefaultExamples()
	intents := make([]string, 0, len(cl.Examples))
	for in := range cl.Examples {
		intents = append(intents, in)
	}
	slices.Sort(intents)
	for _, in := range intents {
		if intentIndex(in) < 0 {
			return nil, fmt.Errorf("classifier.examples: unknown intent %q", in)
		}
		for _, t := range cl.Examples[in] {
			if strings.TrimSpace(t) == "" {
				return nil, fmt.Errorf("classifier.examples.%s: empty example", in)
			}
			ex = append(ex, Example{Intent: in, Text: t})
		}
	}
	if cl.ExamplesFile != "" {
		f, err := os.Open(cl.ExamplesFile)
		if err != nil {
			return nil, fmt.Errorf("classifier.examples_file: %w", err)
		}
		defer f.Close()
		more, err := ParseExamples(f, cl.ExamplesFile)
		if err != nil {
			return nil, fmt.Errorf("classifier.examples_file: %w", err)
		}
		ex = append(ex, more...)
	}
	return ex, nil
}

// cacheSalt identifies everything besides the text that an intent result
// depends on.
func cacheSalt(examples uint64, cl config.Classifier) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], examples)
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(cl.MinConfidence))
	h.Write(b[:])
	h.Write([]byte(cl.Mode))
	h.Write([]byte{0})
	if cl.Mode == "llm" {
		h.Write([]byte(cl.LLM.Model))
		h.Write([]byte{0})
		h.Write([]byte(cl.LLM.Endpoint))
	}
	return h.Sum64()
}

// Close releases the LLM client's idle connections. Idempotent; the engine
// keeps working (a late request still falls back correctly).
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		if e.llm != nil {
			e.llm.close()
		}
	})
}

// Classifier returns the embedded classifier (for tools such as replay).
func (e *Engine) Classifier() *Classifier { return e.classifier }

// Compute fills out with the signals of req; out is Reset first. Keywords
// run over the whole extracted (bounded) text; PII, injection and the
// complexity counts over each message of it (messages.go), intent over the
// last user turn with a little context. The only error is a nil argument:
// a failing LLM classifier falls back to the embedded one.
func (e *Engine) Compute(ctx context.Context, req *openai.Request, out *Signals) error {
	if req == nil || out == nil {
		return ErrBadArgument
	}
	out.Reset()
	sc := e.pool.Get().(*scratch)
	defer e.release(sc)
	x := &sc.x

	// Phase timings are sampled (one request in phaseSampleEvery): six
	// clock reads and histogram updates per request cost more than the
	// keyword scan they would time.
	timed := e.timed && rand.Uint32()%phaseSampleEvery == 0
	t := start(timed)
	x.Extract(req, e.maxChars)
	t = e.lap(timed, PhaseExtract, t)
	out.PromptChars = x.PromptChars
	out.EstTokens = x.EstTokens
	out.SkippedParts = x.SkippedParts
	out.Truncated = x.Truncated
	text := x.Text

	// Keyword rules are operators' regular expressions over the whole
	// text (a pattern may span messages), so they are not per message.
	out.Keywords, out.KeywordRules = e.keywords.Match(text, &sc.lower, out.Keywords, out.KeywordRules)
	t = e.lap(timed, PhaseKeywords, t)

	m := &sc.m
	*m = messageTotals{}
	e.scanMessages(x, m)
	if m.hits+m.misses > 0 {
		e.obs.MessageCacheLookups(m.hits, m.misses)
	}
	f := features(x, &m.ask, &m.hist)
	out.Complexity = f.Score()
	out.PII = e.pii.Findings(&m.pii, out.PII) // sorted by type
	e.injection.ResultInto(m.inj, &out.Injection)
	t = e.lap(timed, PhaseMessages, t)

	e.intent(ctx, sc, req.Shape, out)
	e.lap(timed, PhaseIntent, t)
	return nil
}

func (e *Engine) release(sc *scratch) {
	if cap(sc.x.Text) > maxPooledText || cap(sc.lower) > maxPooledText || cap(sc.f.norm) > maxPooledText {
		return
	}
	sc.x.reset() // drop views of the request body
	e.pool.Put(sc)
}

// phaseSampleEvery: one request in this many has its signal phases timed.
const phaseSampleEvery = 8

func start(timed bool) time.Time {
	if !timed {
		return time.Time{}
	}
	return time.Now()
}

func (e *Engine) lap(timed bool, phase string, t time.Time) time.Time {
	if !timed {
		return t
	}
	now := time.Now()
	e.obs.Phase(phase, now.Sub(t))
	return now
}

// intentInput splits the classifier text into the ask (last user turn, or
// the start of the text when there is none) and its context.
func intentInput(x *Extraction) (ask, ctxText []byte) {
	text := x.Text
	if x.LastUserLen == 0 {
		return text[:runeCut(text, windowHead+windowTail)], nil
	}
	ask = text[:x.LastUserLen]
	rest := text[x.LastUserLen:]
	rest = rest[min(len(rest), len(turnSeparator)):]
	return ask, rest[:runeCut(rest, contextBytes)]
}

func (e *Engine) intent(ctx context.Context, sc *scratch, shape openai.Shape, out *Signals) {
	ask, ctxText := intentInput(&sc.x)
	if shape == openai.ShapeEmbeddings || len(ask) == 0 {
		// An embeddings input is a document, not an ask.
		out.Intent, out.Classifier = UnknownIntent, SourceEmbedded
		return
	}
	var key uint64
	if e.cache != nil {
		key = e.cache.key(e.salt, ask, ctxText)
		if v, ok := e.cache.get(key); ok {
			e.obs.CacheLookup(true)
			e.obs.Classified(SourceCache)
			out.Intent, out.IntentConfidence, out.Classifier = v.name, v.conf, SourceCache
			return
		}
		e.obs.CacheLookup(false)
	}
	if e.llm != nil {
		if in, err := e.llm.classify(ctx, ask, ctxText); err == nil {
			e.set(out, in, SourceLLM, key)
			return
		}
		// Fallback results are not cached, so the LLM answers this text
		// once it is back.
		in := e.classifier.classify(&sc.f, ask, ctxText)
		out.Intent, out.IntentConfidence, out.Classifier = in.Name, in.Confidence, SourceEmbedded
		e.obs.Classified(SourceEmbedded)
		return
	}
	e.set(out, e.classifier.classify(&sc.f, ask, ctxText), SourceEmbedded, key)
}

func (e *Engine) set(out *Signals, in Intent, source string, key uint64) {
	out.Intent, out.IntentConfidence, out.Classifier = in.Name, in.Confidence, source
	e.obs.Classified(source)
	if e.cache != nil {
		e.cache.add(key, cachedIntent{name: in.Name, conf: in.Confidence})
	}
}
