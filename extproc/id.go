package extproc

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// idSource makes short, unique, unguessable-enough decision ids without a
// syscall per request: a random 64-bit key mixed with a counter through a
// bijective 64-bit mixer, printed as 13 base32 characters.
type idSource struct {
	key uint64
	n   atomic.Uint64
}

func newIDSource() *idSource {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &idSource{key: binary.LittleEndian.Uint64(b[:])}
}

const base32Alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

func (s *idSource) next() string {
	x := s.n.Add(1) ^ s.key
	// splitmix64 finaliser: a bijection, so distinct counters give distinct ids.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	var buf [13]byte
	for i := len(buf) - 1; i >= 0; i-- {
		buf[i] = base32Alphabet[x&31]
		x >>= 5
	}
	return string(buf[:])
}
