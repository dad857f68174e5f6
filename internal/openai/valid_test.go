package openai

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// oracleCheckJSON is the definition checkJSON must match: gjson's validity
// and then a depth bound counted outside strings.
func oracleCheckJSON(body []byte, maxDepth int) error {
	if !gjson.ValidBytes(body) {
		return ErrNotJSON
	}
	depth, inStr, esc := 0, false, false
	for _, c := range body {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return ErrTooDeep
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// sameErr reports whether a and b are the same outcome (both nil, or the
// same sentinel).
func sameErr(a, b error) bool { return errors.Is(a, b) && errors.Is(b, a) }

var validCases = []string{
	`{}`, `[]`, ` {} `, "\t[ ]\n", `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"d"}`,
	`"str"`, `0`, `-0`, `1.5e10`, `-1E-2`, `1e+5`, `true`, `false`, `null`,
	`{"s":"esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"}`,
	`{"long":"` + strings.Repeat("plain text with spaces ", 40) + `"}`,
	`{"utf8":"héllo wörld 日本語 🙂"}`, "{\"bad utf8\":\"\xff\xfe\"}",
	`[[[[[[[[]]]]]]]]`, `{"a":{"b":{"c":{}}}}`,
	// invalid
	``, ` `, `{`, `}`, `[`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`,
	`{"a":1 "b":2}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `[1 2]`, `01`, `1.`, `.5`, `1e`, `1e+`,
	`-`, `+1`, `--1`, `tru`, `nul`, `falsey`, `truex`, `[true false]`, `"abc`, `"a\qb"`,
	`"\u12"`, `"\u12g4"`, "\"ctl\x01\"", "\"tab\there\"", `{"a":1}}`, `[1]]`, `{"a":[}`,
	`[{]}`, `{"a":1]`, `[1}`, `{} {}`, `"\`, `"a\"`, `{"a":"b"` + strings.Repeat(" ", 9),
	"\x00", `{"k":1}x`, `[1,2,3`, `{"a":-}`, `{"a":0x1}`, `{"a":1.2.3}`, `{"a":Infinity}`,
}

func TestCheckJSONMatchesOracle(t *testing.T) {
	for _, body := range validCases {
		for _, depth := range []int{1, 2, 3, 64} {
			got, want := checkJSON([]byte(body), depth), oracleCheckJSON([]byte(body), depth)
			if !sameErr(got, want) {
				t.Errorf("checkJSON(%q, %d) = %v, oracle %v", body, depth, got, want)
			}
		}
	}
	// Depth at and around the bound, valid and broken, past 64 levels (the
	// first stack word).
	for _, n := range []int{63, 64, 65, 200, 300} {
		deep := strings.Repeat(`{"a":[`, n) + `1` + strings.Repeat(`]}`, n)
		for _, body := range []string{deep, deep[:len(deep)-1], deep + "x"} {
			for _, max := range []int{2 * n, 2*n - 1, 64, 1000} {
				got, want := checkJSON([]byte(body), max), oracleCheckJSON([]byte(body), max)
				if !sameErr(got, want) {
					t.Errorf("depth %d, max %d, %d bytes: checkJSON %v, oracle %v", n, max, len(body), got, want)
				}
			}
		}
	}
}

// Random mutations of realistic bodies: every single-byte edit of a body
// with all JSON features, at every position.
func TestCheckJSONMutations(t *testing.T) {
	base := []byte(`{"model":"auto","stream":true,"messages":[{"role":"user","content":"a \"q\"\n\u00e9"}],"n":-1.5e3,"x":[true,false,null,{}]}`)
	alphabet := []byte("{}[]\":,\\ \t\nu0123456789eE+-.tfnlrsax\x01\x7f\xc3")
	for i := range base {
		for _, c := range alphabet {
			b := bytes.Clone(base)
			b[i] = c
			if got, want := checkJSON(b, 4), oracleCheckJSON(b, 4); !sameErr(got, want) {
				t.Fatalf("checkJSON(%q) = %v, oracle %v", b, got, want)
			}
			del := append(bytes.Clone(base[:i]), base[i+1:]...)
			if got, want := checkJSON(del, 4), oracleCheckJSON(del, 4); !sameErr(got, want) {
				t.Fatalf("checkJSON(%q) = %v, oracle %v", del, got, want)
			}
		}
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, depth uint8) {
		max := int(depth%80) + 1
		if got, want := checkJSON(body, max), oracleCheckJSON(body, max); !sameErr(got, want) {
			t.Fatalf("checkJSON(%q, %d) = %v, oracle %v", body, max, got, want)
		}
	})
}

// chatBody is a realistic chat body of about n bytes: turns of prose and
// code with escapes.
func chatBody(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("the router reads a body and picks a model for it while envoy forwards retries and fails over when a vendor is slow; quarterly revenue grew by twelve percent")
	var b bytes.Buffer
	b.WriteString(`{"model":"auto","temperature":0.2,"messages":[{"role":"system","content":"You are helpful."}`)
	for b.Len() < n {
		b.WriteString(`,{"role":"user","content":"`)
		for range 80 {
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(9) == 0 {
				b.WriteString(`\n    if (x) { return \"y\"; }\n`)
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(`"}`)
	}
	b.WriteString(`],"max_tokens":512}`)
	return b.Bytes()
}

func BenchmarkCheckJSON(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		body := chatBody(size, 1)
		if err := checkJSON(body, 64); err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			fn   func([]byte, int) error
		}{{"switchyard", checkJSON}, {"gjson+depth", oracleCheckJSON}} {
			b.Run(fmt.Sprintf("%dKB/%s", size>>10, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.fn(body, 64); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
