package policy

import (
	"encoding/binary"
	"hash/maphash"
	"math"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/switchyard-llm/switchyard/internal/setcache"
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// The decision cache. A compiled policy set is a pure function of its input
// (and of data, fixed per Engine) unless it calls a non-deterministic
// builtin. Most requests differ only in fields a given policy never reads
// (prompt sizes, confidences, complexity), so the engine hashes just the
// input fields the policy's rules refer to and reuses the decision of an
// earlier request with the same values. A full Rego evaluation costs tens of
// microseconds and hundreds of allocations; a hit costs a hash and a map
// lookup. The cache lives and dies with the Engine, so a policy or config
// reload starts empty. Explain never uses it.

// Leaf fields of the input document that a key can cover, one bit each.
const (
	fReqMethod = iota
	fReqPath
	fReqHeaders
	fReqTenant
	fReqModel
	fReqStream
	fReqMaxTokens
	fReqResponseFormat
	fReqHasTools
	fReqMessageCount
	fReqPromptChars
	fReqEstTokens
	fSigIntent
	fSigIntentConfidence
	fSigComplexity
	fSigKeywords
	fSigPII
	fSigInjectionScore
	fSigInjectionMatched
	fSigClassifier
	fSigPromptChars
	fSigEstTokens
	fSigSkippedParts
	fSigTruncated
	fPropTarget
	fPropTier
	fPropReason
	numFields
)

const allFields = uint64(1)<<numFields - 1

// sectionFields maps input.<section>.<key> to its bits; a section entry
// with key "" is the whole section.
var sectionFields = map[string]map[string]uint64{
	"request": {
		"method": 1 << fReqMethod, "path": 1 << fReqPath, "headers": 1 << fReqHeaders, "tenant": 1 << fReqTenant,
		"model": 1 << fReqModel, "stream": 1 << fReqStream, "max_tokens": 1 << fReqMaxTokens,
		"response_format": 1 << fReqResponseFormat, "has_tools": 1 << fReqHasTools,
		"message_count": 1 << fReqMessageCount, "prompt_chars": 1 << fReqPromptChars, "est_tokens": 1 << fReqEstTokens,
	},
	"signals": {
		"intent": 1 << fSigIntent, "intent_confidence": 1 << fSigIntentConfidence, "complexity": 1 << fSigComplexity,
		"keywords": 1 << fSigKeywords, "pii": 1 << fSigPII,
		"injection":  1<<fSigInjectionScore | 1<<fSigInjectionMatched,
		"classifier": 1 << fSigClassifier, "prompt_chars": 1 << fSigPromptChars, "est_tokens": 1 << fSigEstTokens,
		"skipped_parts": 1 << fSigSkippedParts, "truncated": 1 << fSigTruncated,
	},
	"proposal": {"target": 1 << fPropTarget, "tier": 1 << fPropTier, "reason": 1 << fPropReason},
}

func sectionMask(section string) uint64 {
	var m uint64
	for _, b := range sectionFields[section] {
		m |= b
	}
	return m
}

// inputFieldsRead returns the bits of every input field some rule may read.
// It is conservative: a ref it cannot resolve to known fields (bare input,
// a variable where a key would be, an unknown key) counts as reading the
// whole enclosing document.
func inputFieldsRead(c *ast.Compiler) uint64 {
	var mask uint64
	for _, mod := range c.Modules {
		ast.WalkRefs(mod, func(r ast.Ref) bool {
			if r.HasPrefix(ast.InputRootRef) {
				mask |= refFields(r)
			}
			return false
		})
	}
	// Decision defaults (allow without target = the proposal's target)
	// depend on the proposal's target whatever the policy reads.
	return mask | 1<<fPropTarget
}

func refFields(r ast.Ref) uint64 {
	if len(r) < 2 {
		return allFields
	}
	sec, ok := r[1].Value.(ast.String)
	if !ok {
		return allFields
	}
	switch string(sec) {
	case "version", "targets":
		return 0 // the same for every request of an Engine
	}
	keys, known := sectionFields[string(sec)]
	if !known {
		return allFields
	}
	if len(r) < 3 {
		return sectionMask(string(sec))
	}
	key, ok := r[2].Value.(ast.String)
	if !ok {
		return sectionMask(string(sec))
	}
	bits, ok := keys[string(key)]
	if !ok {
		return sectionMask(string(sec))
	}
	if string(sec) == "signals" && string(key) == "injection" && len(r) >= 4 {
		if k, ok := r[3].Value.(ast.String); ok {
			switch string(k) {
			case "score":
				return 1 << fSigInjectionScore
			case "matched":
				return 1 << fSigInjectionMatched
			}
		}
	}
	return bits
}

// deterministic reports whether no rule calls a non-deterministic builtin
// (time.now_ns, rand.intn, uuid.rfc4122, http.send, ...).
func deterministic(c *ast.Compiler) bool {
	ok := true
	for _, mod := range c.Modules {
		ast.WalkExprs(mod, func(x *ast.Expr) bool {
			if !x.IsCall() {
				return false
			}
			name := x.Operator().String()
			if b, found := ast.BuiltinMap[name]; found && b.Nondeterministic {
				ok = false
			}
			return !ok
		})
	}
	return ok
}

// decisionKey is a 128-bit hash of the fields a policy reads: two
// independently seeded hashes, so a collision (which would hand one request
// another's decision) is out of reach in practice.
type decisionKey [2]uint64

type memo struct {
	mask   uint64
	seeds  [2]maphash.Seed
	cache  *setcache.Cache[decisionKey, Decision] // lock-free: read by every request
	onLook func(hit bool)
}

// newMemo returns nil when caching is off (size < 0) or unsafe.
func newMemo(c *ast.Compiler, size int, onLook func(bool)) *memo {
	if size < 0 || !deterministic(c) {
		return nil
	}
	if size == 0 {
		size = DefaultDecisionCacheSize
	}
	cache, err := setcache.New[decisionKey, Decision](size)
	if err != nil {
		return nil
	}
	if onLook == nil {
		onLook = func(bool) {}
	}
	return &memo{mask: inputFieldsRead(c), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, cache: cache, onLook: onLook}
}

// DefaultDecisionCacheSize is the decision cache size when the config says 0.
const DefaultDecisionCacheSize = 4096

func (m *memo) get(in *Input) (decisionKey, Decision, bool) {
	k := m.key(in)
	d, ok := m.cache.Get(k[0], k)
	m.onLook(ok)
	return k, d, ok
}

func (m *memo) key(in *Input) decisionKey {
	var out decisionKey
	sig := in.Signals
	if sig == nil {
		sig = &signals.Signals{}
	}
	for i := range out {
		var h maphash.Hash
		h.SetSeed(m.seeds[i])
		w := keyWriter{h: &h}
		m.write(&w, in, sig, m.seeds[i])
		out[i] = h.Sum64()
	}
	return out
}

func (m *memo) has(f int) bool { return m.mask&(1<<f) != 0 }

// write feeds every covered field, each tagged with its field number so
// that different fields with equal values never hash alike.
func (m *memo) write(w *keyWriter, in *Input, sig *signals.Signals, seed maphash.Seed) {
	r := &in.Request
	for f := 0; f < numFields; f++ {
		if !m.has(f) {
			continue
		}
		w.u64(uint64(f))
		switch f {
		case fReqMethod:
			w.str(r.Method)
		case fReqPath:
			w.str(r.Path)
		case fReqHeaders:
			w.u64(uint64(len(r.Headers)))
			w.u64(headersHash(r.Headers, seed)) // order-independent
		case fReqTenant:
			w.str(r.Tenant)
		case fReqModel:
			w.str(r.Model)
		case fReqStream:
			w.boolean(r.Stream)
		case fReqMaxTokens:
			w.u64(uint64(r.MaxTokens))
		case fReqResponseFormat:
			w.str(r.ResponseFormat)
		case fReqHasTools:
			w.boolean(r.HasTools)
		case fReqMessageCount:
			w.u64(uint64(r.MessageCount))
		case fReqPromptChars:
			w.u64(uint64(r.PromptChars))
		case fReqEstTokens:
			w.u64(uint64(r.EstTokens))
		case fSigIntent:
			w.str(sig.Intent)
		case fSigIntentConfidence:
			w.float(sig.IntentConfidence)
		case fSigComplexity:
			w.float(sig.Complexity)
		case fSigKeywords:
			w.strs(sig.Keywords)
		case fSigPII:
			w.u64(uint64(len(sig.PII)))
			for _, p := range sig.PII {
				w.str(p.Type)
				w.u64(uint64(p.Count))
			}
		case fSigInjectionScore:
			w.float(sig.Injection.Score)
		case fSigInjectionMatched:
			w.strs(sig.Injection.Matched)
		case fSigClassifier:
			w.str(sig.Classifier)
		case fSigPromptChars:
			w.u64(uint64(sig.PromptChars))
		case fSigEstTokens:
			w.u64(uint64(sig.EstTokens))
		case fSigSkippedParts:
			w.u64(uint64(sig.SkippedParts))
		case fSigTruncated:
			w.boolean(sig.Truncated)
		case fPropTarget:
			w.str(in.Proposal.Target)
		case fPropTier:
			w.str(in.Proposal.Tier)
		case fPropReason:
			w.str(in.Proposal.Reason)
		}
	}
}

func headersHash(h map[string]string, seed maphash.Seed) uint64 {
	var sum uint64
	for k, v := range h {
		var hh maphash.Hash
		hh.SetSeed(seed)
		hh.WriteString(k)
		hh.WriteByte(0)
		hh.WriteString(v)
		sum += hh.Sum64()
	}
	return sum
}

type keyWriter struct {
	h   *maphash.Hash
	buf [8]byte
}

func (w *keyWriter) u64(v uint64) {
	binary.LittleEndian.PutUint64(w.buf[:], v)
	w.h.Write(w.buf[:])
}

// str is length-prefixed, so ("ab","c") and ("a","bc") differ.
func (w *keyWriter) str(s string) {
	w.u64(uint64(len(s)))
	w.h.WriteString(s)
}

func (w *keyWriter) strs(ss []string) {
	w.u64(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *keyWriter) boolean(b bool) {
	if b {
		w.u64(1)
	} else {
		w.u64(0)
	}
}

// float hashes the value the policy would see (NaN and Inf read as 0).
func (w *keyWriter) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	w.u64(math.Float64bits(f))
}
