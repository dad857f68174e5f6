package signals

import (
	"hash/maphash"

	"github.com/switchyard-llm/switchyard/internal/setcache"

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
// The cache (internal/setcache: lock-free, two-way set-associative) holds
// signals.message_cache_size entries, rounded up to a power of two, keyed
// by the message length and a 64-bit maphash seeded at random per process,
// so that collisions cannot be aimed at.

// minCachedMessage is the shortest message worth a cache lookup: hashing
// and the lookup cost about as much as scanning this many bytes.
const minCachedMessage = 128

// messageScan is what the per-message scanners found in one message.
type messageScan struct {
	cx  complexityScan
	pii pii.Counts
	inj injection.Fired
}

// messageCache remembers messageScan results. Safe for concurrent use.
type messageCache struct {
	c    *setcache.Cache[messageKey, messageScan]
	seed maphash.Seed
}

type messageKey struct {
	hash uint64
	n    int
}

// newMessageCache returns nil when size is not positive (cache off).
func newMessageCache(size int) (*messageCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := setcache.New[messageKey, messageScan](size)
	if err != nil {
		return nil, err
	}
	return &messageCache{c: c, seed: maphash.MakeSeed()}, nil
}

func (c *messageCache) size() int { return c.c.Size() }

// scanMessage fills out with the scan of one message's text, from the
// cache when it can. It reports whether the cache was consulted and hit.
func (e *Engine) scanMessage(text []byte, out *messageScan) (looked, hit bool) {
	c := e.messages
	if c == nil || len(text) < minCachedMessage {
		e.scanMessageText(text, out)
		return false, false
	}
	k := messageKey{hash: maphash.Bytes(c.seed, text), n: len(text)}
	if v, ok := c.c.Get(k.hash, k); ok {
		*out = v
		return true, true
	}
	e.scanMessageText(text, out)
	c.c.Put(k.hash, k, *out)
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
