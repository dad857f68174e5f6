package judge

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveDepthWithin is the byte-at-a-time reference for depthWithin.
func naiveDepthWithin(b string, max int) bool {
	depth, inStr := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > max {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

func TestDepthWithin(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want bool
	}{
		{`{"a":[1,{"b":2}]}`, 3, true},
		{`{"a":[1,{"b":2}]}`, 2, false},
		{`{"a":"[[[[[[[["}`, 1, true},
		{`{"a":"x\"[[[["}`, 1, true},
		{`{"a":"x\\"}[[[[`, 2, false},
		{`{"a":"x\\\"[[[["}`, 1, true},
		{`"unterminated [[[[`, 0, true},
		{strings.Repeat("[", 10) + strings.Repeat("]", 10), 9, false},
	}
	for _, tc := range tests {
		if got := depthWithin(tc.in, tc.max); got != tc.want {
			t.Errorf("depthWithin(%q, %d) = %v, want %v", tc.in, tc.max, got, tc.want)
		}
		if got := depthWithin([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("depthWithin([]byte %q, %d) = %v, want %v", tc.in, tc.max, got, tc.want)
		}
	}
	// Random strings over the interesting alphabet agree with the reference.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = `"\[]{}ab`
	for n := 0; n < 20000; n++ {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		max := rng.IntN(4)
		if got, want := depthWithin(string(b), max), naiveDepthWithin(string(b), max); got != want {
			t.Fatalf("depthWithin(%q, %d) = %v, reference %v", b, max, got, want)
		}
	}
}
