// Package setcache is a fixed-size, lock-free, two-way set-associative
// cache for the request path.
//
// Switchyard's per-request caches (message scans, intents, policy
// decisions) are read on every request by every stream worker. An LRU
// behind a mutex (golang-lru) cost 1–2 µs per lookup under load on the
// 2-core development machine, most of it lock contention and list upkeep,
// more than some of the work it saved. Here a key's hash picks a set of two
// neighbouring slots; a slot is an atomic pointer to an immutable entry, so
// a lookup is two atomic loads and a key comparison, and an insert is one
// allocation and one atomic store. A new entry takes an empty way, else the
// way holding the same key, else a random one: recency is approximated by
// replacement, which for these caches (hot system prompts, conversation
// histories and asks, few repeated decisions) keeps the hot entries.
//
// The caller supplies the hash; it must be well spread (maphash) and should
// be seeded per process where keys come from clients, so that nobody can
// aim entries at one set. Equal keys must have equal hashes.
package setcache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// MaxSize bounds a cache: 16M slots of 8 bytes are 128 MB of table.
const MaxSize = 1 << 24

// ErrSize is wrapped by New when the size is out of range.
var ErrSize = errors.New("setcache: size out of range")

// Cache maps keys to values. It is safe for concurrent use; values are
// stored and returned by copy and must not be changed through pointers
// they contain.
type Cache[K comparable, V any] struct {
	slots []atomic.Pointer[entry[K, V]]
	mask  uint64
	size  int
}

type entry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

// New returns a cache of at least size entries (rounded up to a power of
// two, at least 2). size must be in [1, MaxSize].
func New[K comparable, V any](size int) (*Cache[K, V], error) {
	if size < 1 || size > MaxSize {
		return nil, fmt.Errorf("%w: %d not in [1, %d]", ErrSize, size, MaxSize)
	}
	n := 2
	for n < size {
		n <<= 1
	}
	return &Cache[K, V]{slots: make([]atomic.Pointer[entry[K, V]], n), mask: uint64(n - 1), size: size}, nil
}

// Size is the size New was given.
func (c *Cache[K, V]) Size() int { return c.size }

// Slots is the number of entries the cache holds at most.
func (c *Cache[K, V]) Slots() int { return len(c.slots) }

func (c *Cache[K, V]) ways(h uint64) (a, b *atomic.Pointer[entry[K, V]]) {
	i := h & c.mask &^ 1
	return &c.slots[i], &c.slots[i|1]
}

// Get returns the value stored for key (whose hash is h).
func (c *Cache[K, V]) Get(h uint64, key K) (V, bool) { return c.Load(h).Get(h, key) }

// Set is the two entries of one set as loaded by Load: the first half of a
// Get. A caller looking up several keys loads all their sets first, then
// reads the entries, so that the slot reads and then the entry reads (each
// usually a cache miss under load) overlap instead of queueing one behind
// the other. Entries are immutable: a Set stays valid to read, at worst
// missing a Put made after Load.
type Set[K comparable, V any] struct{ a, b *entry[K, V] }

// Load returns the set of hash h.
func (c *Cache[K, V]) Load(h uint64) Set[K, V] {
	a, b := c.ways(h)
	return Set[K, V]{a.Load(), b.Load()}
}

// Get returns the value stored for key (whose hash is h) in the set.
func (s Set[K, V]) Get(h uint64, key K) (V, bool) {
	if e := s.a; e != nil && e.hash == h && e.key == key {
		return e.val, true
	}
	if e := s.b; e != nil && e.hash == h && e.key == key {
		return e.val, true
	}
	var zero V
	return zero, false
}

// Put stores val for key (whose hash is h), replacing an older value of the
// same key or, when the set is full, one of its two entries.
func (c *Cache[K, V]) Put(h uint64, key K, val V) {
	a, b := c.ways(h)
	ea, eb := a.Load(), b.Load()
	e := &entry[K, V]{hash: h, key: key, val: val}
	switch {
	case ea != nil && ea.hash == h && ea.key == key:
		a.Store(e)
	case eb != nil && eb.hash == h && eb.key == key:
		b.Store(e)
	case ea == nil:
		a.Store(e)
	case eb == nil:
		b.Store(e)
	case rand.Uint32()&1 == 0:
		a.Store(e)
	default:
		b.Store(e)
	}
}

// Len counts the entries held (O(slots); for tests and diagnostics).
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}
