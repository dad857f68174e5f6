package setcache

import (
	"errors"
	"hash/maphash"
	"sync"
	"testing"
)

func TestNewSizes(t *testing.T) {
	for _, tc := range []struct{ size, slots int }{{1, 2}, {2, 2}, {3, 4}, {1000, 1024}, {MaxSize, MaxSize}} {
		c, err := New[int, int](tc.size)
		if err != nil {
			t.Fatalf("New(%d): %v", tc.size, err)
		}
		if c.Slots() != tc.slots || c.Size() != tc.size {
			t.Errorf("New(%d): %d slots, size %d; want %d slots", tc.size, c.Slots(), c.Size(), tc.slots)
		}
	}
	for _, bad := range []int{0, -1, MaxSize + 1} {
		if _, err := New[int, int](bad); !errors.Is(err, ErrSize) {
			t.Errorf("New(%d): %v, want ErrSize", bad, err)
		}
	}
}

func TestGetPut(t *testing.T) {
	c, err := New[string, int](8) // 4 sets of 2
	if err != nil {
		t.Fatal(err)
	}
	// Keys in one set (hashes 4 and 5 share set 4..5) and a key whose
	// hash collides with another key's: the key decides.
	c.Put(4, "a", 1)
	c.Put(5, "b", 2)
	if v, ok := c.Get(4, "a"); !ok || v != 1 {
		t.Errorf("a: %v %v", v, ok)
	}
	if v, ok := c.Get(5, "b"); !ok || v != 2 {
		t.Errorf("b: %v %v", v, ok)
	}
	if _, ok := c.Get(4, "other"); ok {
		t.Error("hit for a key that was never stored (same hash)")
	}
	if _, ok := c.Get(12, "a"); ok {
		t.Error("hit for the right key under another hash")
	}
	// Replacing a key keeps one copy: the other way survives.
	c.Put(4, "a", 10)
	if v, _ := c.Get(4, "a"); v != 10 {
		t.Errorf("a after replace: %v", v)
	}
	if _, ok := c.Get(5, "b"); !ok {
		t.Error("replacing a evicted b")
	}
	// A third key in the full set evicts exactly one of the two.
	c.Put(4|1<<40, "c", 3)
	if _, ok := c.Get(4|1<<40, "c"); !ok {
		t.Fatal("newest entry missing")
	}
	_, okA := c.Get(4, "a")
	_, okB := c.Get(5, "b")
	if okA == okB {
		t.Errorf("after a third key: a %v, b %v; want exactly one left", okA, okB)
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Len %d, want 2", n)
	}
}

// TestHitRate: a working set half the size of the cache stays mostly
// cached. With 2048 keys in 2048 two-way sets a set gets Poisson(1) keys,
// so about 10% of the keys (E[max(0, X-2)] = 3/e - 1) are displaced in
// steady state and random replacement churns a few more: expect about
// 85% hits; 70% leaves room for the randomness (seed and replacement).
func TestHitRate(t *testing.T) {
	c, err := New[uint64, uint64](4096)
	if err != nil {
		t.Fatal(err)
	}
	seed := maphash.MakeSeed()
	h := func(k uint64) uint64 { return maphash.Comparable(seed, k) }
	const keys = 2048
	for round := range 3 {
		hits := 0
		for k := range uint64(keys) {
			if v, ok := c.Get(h(k), k); ok {
				if v != k*7 {
					t.Fatalf("key %d: value %d", k, v)
				}
				hits++
			} else {
				c.Put(h(k), k, k*7)
			}
		}
		if round == 2 && hits < keys*7/10 {
			t.Errorf("round %d: %d of %d hits", round, hits, keys)
		}
	}
}

// TestConcurrent: readers and writers race on a small table; every hit is
// the value of the key asked for (run with -race).
func TestConcurrent(t *testing.T) {
	c, err := New[uint64, [4]uint64](16)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20000 {
				k := uint64((i*7 + g) % 64)
				if v, ok := c.Get(k*0x9e3779b97f4a7c15, k); ok {
					if v != [4]uint64{k, k, k, k} {
						t.Errorf("key %d: %v", k, v)
						return
					}
				} else {
					c.Put(k*0x9e3779b97f4a7c15, k, [4]uint64{k, k, k, k})
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkGetHit(b *testing.B) {
	c, err := New[uint64, [2]uint64](4096)
	if err != nil {
		b.Fatal(err)
	}
	seed := maphash.MakeSeed()
	for k := range uint64(1024) {
		c.Put(maphash.Comparable(seed, k), k, [2]uint64{k, k})
	}
	b.ReportAllocs()
	k := uint64(0)
	for b.Loop() {
		k = (k + 1) & 1023
		if _, ok := c.Get(maphash.Comparable(seed, k), k); !ok {
			b.Fatal("miss")
		}
	}
}
