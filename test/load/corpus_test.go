package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

var allSizes = []int{1 << 10, 2 << 10, 8 << 10, 64 << 10}

func TestCorpusDeterministic(t *testing.T) {
	a, err := newCorpus(7, allSizes, 8, 0.5, "auto", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCorpus(7, allSizes, 8, 0.5, "auto", 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCorpus(8, allSizes, 8, 0.5, "auto", 1)
	if err != nil {
		t.Fatal(err)
	}
	same, differ := 0, 0
	for i := uint64(0); i < 64; i++ {
		ba, _ := a.body(nil, i)
		bb, _ := b.body(nil, i)
		bc, _ := c.body(nil, i)
		if !bytes.Equal(ba, bb) {
			t.Errorf("body %d differs between two corpora with the same seed", i)
		}
		if bytes.Equal(ba, bc) {
			same++
		} else {
			differ++
		}
	}
	if differ == 0 {
		t.Errorf("seeds 7 and 8 gave identical corpora (%d bodies)", same)
	}
}

// Every body is a valid chat request near its size class, ends with a user
// message that holds the request's number, and no two pool bodies are alike.
func TestCorpusBodies(t *testing.T) {
	c, err := newCorpus(1, allSizes, 64, 0, "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	kindsSeen := map[string]bool{}
	streams := 0
	for i := range c.pool {
		tp := &c.pool[i]
		n := uint64(1_234_567 + i)
		body := tp.render(nil, n)
		var req struct {
			Model    string    `json:"model"`
			Messages []message `json:"messages"`
			Stream   bool      `json:"stream"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("body %d (%s, %d): invalid JSON: %v", i, tp.kind, tp.size, err)
		}
		if req.Model != "auto" || len(req.Messages) == 0 {
			t.Errorf("body %d: model %q, %d messages", i, req.Model, len(req.Messages))
			continue
		}
		last := req.Messages[len(req.Messages)-1]
		if last.Role != "user" || !strings.Contains(last.Content, strconv.FormatUint(n, 10)) {
			t.Errorf("body %d: last message %q does not carry the request number", i, last.Role)
		}
		if lo := tp.size * 8 / 10; len(body) < lo || len(body) > tp.size+16 {
			t.Errorf("body %d: %d bytes, want about %d", i, len(body), tp.size)
		}
		if strings.Count(last.Content, "```")%2 != 0 {
			t.Errorf("body %d: unclosed code fence in the last message", i)
		}
		if j, dup := seen[string(body)]; dup {
			t.Errorf("bodies %d and %d are identical", j, i)
		}
		seen[string(body)] = i
		kindsSeen[tp.kind] = true
		if req.Stream != tp.stream {
			t.Errorf("body %d: stream %v, template says %v", i, req.Stream, tp.stream)
		}
		if req.Stream {
			streams++
		}
	}
	if len(kindsSeen) != len(kinds) {
		t.Errorf("kinds used %v, want all of %v", kindsSeen, kinds)
	}
	if streams == 0 || streams == len(c.pool) {
		t.Errorf("%d of %d bodies stream; want a mix", streams, len(c.pool))
	}
}

func TestCorpusUniqueRatio(t *testing.T) {
	for _, u := range []float64{0, 0.25, 0.8, 1} {
		t.Run(strconv.FormatFloat(u, 'f', -1, 64), func(t *testing.T) {
			c, err := newCorpus(1, []int{1024}, 4, u, "auto", 99)
			if err != nil {
				t.Fatal(err)
			}
			const n = 10000
			bodies := map[string]bool{}
			unique := 0
			for i := uint64(0); i < n; i++ {
				if c.isUnique(i) {
					unique++
				}
				b, _ := c.body(nil, i)
				bodies[string(b)] = true
			}
			want := int(u * n)
			if unique < want-1 || unique > want+1 {
				t.Errorf("%d unique of %d, want %d±1", unique, n, want)
			}
			// Distinct bodies: every unique request plus the pool (4) when repeats happen.
			wantDistinct := unique
			if u < 1 {
				wantDistinct += 4
			}
			if len(bodies) != wantDistinct {
				t.Errorf("%d distinct bodies, want %d", len(bodies), wantDistinct)
			}
		})
	}
}

func TestCorpusRejectsBadSettings(t *testing.T) {
	if _, err := newCorpus(1, []int{1024}, 0, 0.5, "auto", 0); err == nil {
		t.Error("pool 0 accepted")
	}
	if _, err := newCorpus(1, []int{1024}, 4, 1.5, "auto", 0); err == nil {
		t.Error("unique 1.5 accepted")
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"2k", []int{2048}, false},
		{"1k, 8K,64k", []int{1024, 8192, 65536}, false},
		{"1500", []int{1500}, false},
		{"", nil, true},
		{"0", nil, true},
		{"-1k", nil, true},
		{"9000k", nil, true},
		{"2kb", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSizes(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("parseSizes(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && !equalInts(got, tt.want) {
				t.Errorf("parseSizes(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTrimTo(t *testing.T) {
	s := "first line\nsecond line with \"quotes\"\nthird line é"
	for n := 0; n <= jsonLen(s)+2; n++ {
		got := trimTo(s, n)
		if jsonLen(got) > n {
			t.Errorf("trimTo(%d) encodes to %d bytes", n, jsonLen(got))
		}
		if !strings.HasPrefix(s, got) {
			t.Errorf("trimTo(%d) = %q is not a prefix", n, got)
		}
	}
	if got := trimTo(s, jsonLen(s)); got != s {
		t.Errorf("trimTo(full length) = %q, want the whole string", got)
	}
}
