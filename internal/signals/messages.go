package signals

import (
	"fmt"
	"hash/maphash"
	"sync/atomic"

	"github.com/switchyard-llm/switchyard/internal/config"

	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals/injection"
)

// Per-message scanning. Complexity, PII and injection are computed for
// each message of a request on its own and then combined: complexity
// counts and PII counts add up, injection heuristics are a union. No match
// spans two messages, which is what the text means: a phrase whose words
// sit in different turns was not written as a phrase (and the classifier
// text puts the last user turn right before the system prompt, a seam that
// is not in the conversation at all).
//
// Because the result of a message depends on its bytes alone, it is
// cached. A chat client sends the whole conversation on every turn, and an
// application sends the same system prompt with every request, so most of
// a request's text was seen before; with the cache each request scans
// about its new turn only.
//
// The cache is a two-way set-associative table of signals.message_cache_size
// entries (rounded up to a power of two) keyed by a 64-bit maphash, seeded
// at random per process so that collisions cannot be aimed at, together
// with the message length. Slots are atomic pointers to immutable entries:
// lookups take no lock (an LRU's mutex was 3 µs per request under load,
// most of it contention), and a new entry replaces an empty way, else one
// chosen by a hash bit.

// minCachedMessage is the shortest message worth a cache lookup: hashing
// and the lookup cost about as much as scanning this many bytes.
const minCachedMessage = 128

// messageScan is what the per-message scanners found in one message.
type messageScan struct {
	cx  complexityScan
	pii pii.Counts
	inj injection.Fired
}

type messageEntry struct {
	hash uint64
	n    int
	scan messageScan
}

// messageCache remembers messageScan results. Safe for concurrent use.
type messageCache struct {
	slots []atomic.Pointer[messageEntry]
	mask  uint64
	seed  maphash.Seed
	size  int // as configured (reuse on reload compares it)
}

// newMessageCache returns nil when size is not positive (cache off).
func newMessageCache(size int) (*messageCache, error) {
	if size <= 0 {
		return nil, nil
	}
	if size > maxMessageCacheSize {
		return nil, fmt.Errorf("size %d is above the maximum %d", size, maxMessageCacheSize)
	}
	n := 2
	for n < size {
		n <<= 1
	}
	return &messageCache{slots: make([]atomic.Pointer[messageEntry], n), mask: uint64(n - 1), seed: maphash.MakeSeed(), size: size}, nil
}

// maxMessageCacheSize bounds the table (config validation says so first).
const maxMessageCacheSize = config.MaxMessageCacheSize

// ways returns the two slots a hash may live in: a pair of neighbours.
func (c *messageCache) ways(h uint64) (a, b *atomic.Pointer[messageEntry]) {
	i := h & c.mask &^ 1
	return &c.slots[i], &c.slots[i|1]
}

func (c *messageCache) get(h uint64, n int) (*messageEntry, bool) {
	a, b := c.ways(h)
	if e := a.Load(); e != nil && e.hash == h && e.n == n {
		return e, true
	}
	if e := b.Load(); e != nil && e.hash == h && e.n == n {
		return e, true
	}
	return nil, false
}

func (c *messageCache) put(e *messageEntry) {
	a, b := c.ways(e.hash)
	switch {
	case a.Load() == nil:
		a.Store(e)
	case b.Load() == nil:
		b.Store(e)
	case e.hash>>63 == 0:
		a.Store(e)
	default:
		b.Store(e)
	}
}

// scanMessage fills out with the scan of one message's text, from the
// cache when it can. It reports whether the cache was consulted and hit.
func (e *Engine) scanMessage(text []byte, out *messageScan) (looked, hit bool) {
	c := e.messages
	if c == nil || len(text) < minCachedMessage {
		e.scanMessageText(text, out)
		return false, false
	}
	h := maphash.Bytes(c.seed, text)
	if ent, ok := c.get(h, len(text)); ok {
		*out = ent.scan
		return true, true
	}
	e.scanMessageText(text, out)
	c.put(&messageEntry{hash: h, n: len(text), scan: *out})
	return true, false
}

func (e *Engine) scanMessageText(text []byte, out *messageScan) {
	out.cx = complexityScan{}
	out.cx.scan(text)
	// The scanners get a view of the pooled buffer: what they return
	// does not retain the text (counts and heuristic ids only).
	out.pii = pii.CountAll(bytesString(text))
	out.inj = e.injection.Fired(bytesString(text))
}

// messageTotals combines the messages of one request.
type messageTotals struct {
	ask, hist    complexityScan // the complexity scans of ComplexityOf
	pii          pii.Counts
	inj          injection.Fired
	hits, misses int // message cache lookups
}

// scanMessages scans (or looks up) every message of x and combines them as
// ComplexityOf does.
func (e *Engine) scanMessages(x *Extraction, t *messageTotals) {
	var m messageScan
	for i, sg := range x.segs {
		looked, hit := e.scanMessage(x.Text[sg.start:sg.end], &m)
		if looked {
			if hit {
				t.hits++
			} else {
				t.misses++
			}
		}
		t.pii.Add(&m.pii)
		t.inj |= m.inj
		combineComplexity(x, i, sg, &m.cx, &t.ask, &t.hist)
	}
}
