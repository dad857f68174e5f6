package signals

import (
	"hash/maphash"

	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/setcache"
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
// by a 64-bit maphash of the message seeded at random per process, so that
// collisions cannot be aimed at. An entry is one 64-byte cache line: the
// hash and the counts as 16-bit numbers, which cannot overflow because
// messages of 64 KiB or more are not cached (no count exceeds the length).
// A hit then costs two cache misses, the slot and the entry, where the
// full messageScan took four lines; the lookups are memory-bound under
// load.

// minCachedMessage is the shortest message worth a cache lookup: hashing
// and the lookup cost about as much as scanning this many bytes.
// maxCachedMessage is the first length that is not cached: counts of
// shorter messages fit in 16 bits.
const (
	minCachedMessage = 128
	maxCachedMessage = 1 << 16
)

// messageScan is what the per-message scanners found in one message.
type messageScan struct {
	cx  complexityScan
	pii pii.Counts
	inj injection.Fired
}

// cachedScan is a messageScan of a message shorter than maxCachedMessage,
// in 56 bytes.
type cachedScan struct {
	cue                      [numCues - 1]uint16 // cue[cueNone] is always 0
	nonSpace, questions      uint16
	numbered, bullet, fences uint16
	codeLines, mathMarks     uint16
	pii                      [len(pii.Counts{})]uint16
	inj                      injection.Fired
}

func pack(m *messageScan) (c cachedScan) {
	for i := range c.cue {
		c.cue[i] = uint16(m.cx.cue[i+1])
	}
	x := &m.cx
	c.nonSpace, c.questions, c.numbered, c.bullet = uint16(x.nonSpace), uint16(x.questions), uint16(x.numbered), uint16(x.bullet)
	c.fences, c.codeLines, c.mathMarks = uint16(x.fences), uint16(x.codeLines), uint16(x.mathMarks)
	for i := range c.pii {
		c.pii[i] = uint16(m.pii[i])
	}
	c.inj = m.inj
	return c
}

func (c *cachedScan) unpack(m *messageScan) {
	x := &m.cx
	x.cue[cueNone] = 0
	for i := range c.cue {
		x.cue[i+1] = int(c.cue[i])
	}
	x.nonSpace, x.questions, x.numbered, x.bullet = int(c.nonSpace), int(c.questions), int(c.numbered), int(c.bullet)
	x.fences, x.codeLines, x.mathMarks = int(c.fences), int(c.codeLines), int(c.mathMarks)
	for i := range c.pii {
		m.pii[i] = int32(c.pii[i])
	}
	m.inj = c.inj
}

// messageCache remembers message scans. Safe for concurrent use.
type messageCache struct {
	c    *setcache.Cache[struct{}, cachedScan]
	seed maphash.Seed
}

// newMessageCache returns nil when size is not positive (cache off).
func newMessageCache(size int) (*messageCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := setcache.New[struct{}, cachedScan](size)
	if err != nil {
		return nil, err
	}
	return &messageCache{c: c, seed: maphash.MakeSeed()}, nil
}

func (c *messageCache) size() int { return c.c.Size() }

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

// lookupBatch is how many messages' cache sets scanMessages loads before
// it reads any entry.
const lookupBatch = 16

// scanMessages scans (or looks up) every message of x and combines them as
// ComplexityOf does.
//
// The cache is read in three passes per batch of messages: hash each
// cacheable message and load its set, then read the entries, then scan
// the misses and combine. A lookup is two dependent cache misses (slot,
// entry; 2.2 µs per request under the 2 KB closed loop); done one message
// at a time, each waited behind the previous message's work.
func (e *Engine) scanMessages(x *Extraction, t *messageTotals) {
	c := e.messages
	var m messageScan
	for base := 0; base < len(x.segs); base += lookupBatch {
		segs := x.segs[base:min(len(x.segs), base+lookupBatch)]
		var (
			hs     [lookupBatch]uint64
			sets   [lookupBatch]setcache.Set[struct{}, cachedScan]
			vals   [lookupBatch]cachedScan
			looked [lookupBatch]bool
			hit    [lookupBatch]bool
		)
		if c != nil {
			for k, sg := range segs {
				if n := sg.end - sg.start; n >= minCachedMessage && n < maxCachedMessage {
					hs[k] = maphash.Bytes(c.seed, x.Text[sg.start:sg.end])
					sets[k] = c.c.Load(hs[k])
					looked[k] = true
				}
			}
			for k := range segs {
				if looked[k] {
					vals[k], hit[k] = sets[k].Get(hs[k], struct{}{})
				}
			}
		}
		for k, sg := range segs {
			switch {
			case hit[k]:
				vals[k].unpack(&m)
				t.hits++
			case looked[k]:
				e.scanMessageText(x.Text[sg.start:sg.end], &m)
				c.c.Put(hs[k], struct{}{}, pack(&m))
				t.misses++
			default:
				e.scanMessageText(x.Text[sg.start:sg.end], &m)
			}
			t.pii.Add(&m.pii)
			t.inj |= m.inj
			combineComplexity(x, base+k, sg, &m.cx, &t.ask, &t.hist)
		}
	}
}
