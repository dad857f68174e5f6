package signals

import (
	"hash/maphash"

	"github.com/switchyard-llm/switchyard/internal/setcache"
)

// intentCache remembers intent results per classifier input, in a
// lock-free set-associative table (internal/setcache). Keys are
// 64-bit maphash values of the ask and its context, mixed with a salt that
// identifies everything else the result depends on (examples, threshold,
// mode, LLM model), so an engine built from a changed config can share the
// cache of its predecessor without reading stale entries. Collisions of
// 64-bit keys are possible in principle and harmless: an intent is a
// routing hint, never a security decision.
type intentCache struct {
	c    *setcache.Cache[uint64, cachedIntent]
	seed maphash.Seed
	size int
}

type cachedIntent struct {
	name string // interned: one of config.Intents or UnknownIntent
	conf float64
}

// newIntentCache returns nil when size is 0 (cache disabled).
func newIntentCache(size int) (*intentCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := setcache.New[uint64, cachedIntent](size)
	if err != nil {
		return nil, err
	}
	return &intentCache{c: c, seed: maphash.MakeSeed(), size: size}, nil
}

func (c *intentCache) key(salt uint64, ask, ctxText []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	var s [8]byte
	for i := range s {
		s[i] = byte(salt >> (8 * i))
	}
	h.Write(s[:])
	h.Write(ask)
	h.WriteByte(0)
	h.Write(ctxText)
	return h.Sum64()
}

func (c *intentCache) get(k uint64) (cachedIntent, bool) { return c.c.Get(k, k) }

func (c *intentCache) add(k uint64, v cachedIntent) { c.c.Put(k, k, v) }
