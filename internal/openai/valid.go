package openai

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/tidwall/gjson"
)

// checkJSON validates body as JSON and bounds its nesting depth in one pass
// without allocating. It accepts exactly what gjson.ValidBytes accepts (the
// readers are gjson; valid_test.go checks the two agree), and refuses
// nesting deeper than maxDepth: gjson.ValidBytes does not bound depth, and a
// deeply nested body is a cheap way to make later readers recurse.
//
// Why not gjson.ValidBytes plus a depth scan: chat bodies are mostly long
// strings, and gjson checks them a byte at a time; here string contents are
// skipped eight bytes per step (SWAR), which made validation of a 64 KB body
// 2-6x faster depending on the run (BenchmarkCheckJSON).
func checkJSON(body []byte, maxDepth int) error {
	var v validator
	return v.check(body, maxDepth, false)
}

// check is checkJSON on v; with record it also records the top-level
// members of an object body in v.rec, so Reset reads them without walking
// the body again: gjson's ForEach over the members and a count of the
// messages array were two more passes over every body (~2.5% of server CPU
// at 2 KB, ~7% at 64 KB). v is the caller's, so the record stays on its
// stack.
func (v *validator) check(body []byte, maxDepth int, record bool) error {
	v.data = body
	v.max = maxDepth
	v.recording = record
	if !v.payload() {
		if v.tooDeep && gjson.ValidBytes(body) {
			return ErrTooDeep
		}
		return ErrNotJSON
	}
	return nil
}

// validator is an iterative JSON grammar check. Containers are tracked as a
// bit stack (1 = object), 64 levels per word.
type validator struct {
	data    []byte
	i       int
	max     int
	depth   int
	tooDeep bool
	small   [4]uint64 // 256 levels
	more    []uint64  // beyond
	// recording: fill rec (see check).
	recording bool
	rec       members
}

// maxMembers is how many top-level members are recorded; a body with more
// is read with gjson instead (request bodies have a dozen or so).
const maxMembers = 32

// members are the top-level members of an object body, as byte offsets.
type members struct {
	list [maxMembers]member
	n    int
	// gjson: more than maxMembers members, or a key with an escape
	// sequence (its text would need unescaping): read the body with gjson.
	gjson bool
}

// member is one top-level member: body[keyStart:keyEnd] is the key's
// text, body[valStart:valEnd] its value (leading whitespace included), and
// elems the number of elements when the value is an array.
type member struct {
	keyStart, keyEnd, valStart, valEnd int32
	elems                              int32
}

// valueDone is called after every complete value, at depth v.depth.
func (v *validator) valueDone() {
	ms := &v.rec
	if ms.n == 0 || ms.gjson {
		return
	}
	switch v.depth {
	case 1: // a member's value of the root object
		ms.list[ms.n-1].valEnd = int32(v.i)
	case 2: // an element or member directly inside a member's value
		if !v.inObject() {
			ms.list[ms.n-1].elems++
		}
	}
}

func (v *validator) ws() {
	for v.i < len(v.data) {
		switch v.data[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *validator) push(object bool) bool {
	if v.depth >= v.max {
		v.tooDeep = true
		return false
	}
	w, b := v.depth/64, uint(v.depth%64)
	var word *uint64
	if w < len(v.small) {
		word = &v.small[w]
	} else {
		for w-len(v.small) >= len(v.more) {
			v.more = append(v.more, 0)
		}
		word = &v.more[w-len(v.small)]
	}
	if object {
		*word |= 1 << b
	} else {
		*word &^= 1 << b
	}
	v.depth++
	return true
}

// inObject reports whether the innermost open container is an object.
func (v *validator) inObject() bool {
	d := v.depth - 1
	w := v.small[:]
	if d/64 >= len(v.small) {
		w, d = v.more, d-64*len(v.small)
	}
	return w[d/64]&(1<<uint(d%64)) != 0
}

func (v *validator) payload() bool {
	v.ws()
	if !v.value() {
		return false
	}
	v.ws()
	return v.i == len(v.data)
}

// value reads one JSON value, containers included, without recursion.
func (v *validator) value() bool {
	base := v.depth
	for {
		v.ws()
		if v.i >= len(v.data) {
			return false
		}
		// One value (an opened container counts as its first step).
		switch c := v.data[v.i]; c {
		case '{':
			v.i++
			if !v.push(true) {
				return false
			}
			v.ws()
			if v.i < len(v.data) && v.data[v.i] == '}' {
				v.i++
				v.depth--
				break
			}
			if !v.key() {
				return false
			}
			continue // the member's value
		case '[':
			v.i++
			if !v.push(false) {
				return false
			}
			v.ws()
			if v.i < len(v.data) && v.data[v.i] == ']' {
				v.i++
				v.depth--
				break
			}
			continue // the first element
		case '"':
			v.i++
			if !v.str() {
				return false
			}
		case 't':
			if !v.lit("true") {
				return false
			}
		case 'f':
			if !v.lit("false") {
				return false
			}
		case 'n':
			if !v.lit("null") {
				return false
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return false
			}
			if !v.number() {
				return false
			}
		}
		// After a complete value: close containers or move to the next
		// member/element.
		for {
			if v.recording {
				v.valueDone()
			}
			if v.depth == base {
				return true
			}
			v.ws()
			if v.i >= len(v.data) {
				return false
			}
			c := v.data[v.i]
			obj := v.inObject()
			if c == ',' {
				v.i++
				if obj {
					v.ws()
					if !v.key() {
						return false
					}
				}
				break // next value
			}
			if obj && c == '}' || !obj && c == ']' {
				v.i++
				v.depth--
				continue
			}
			return false
		}
	}
}

// key reads `"name" :` with whitespace, recording root members.
func (v *validator) key() bool {
	if v.i >= len(v.data) || v.data[v.i] != '"' {
		return false
	}
	v.i++
	start := v.i
	if !v.str() {
		return false
	}
	end := v.i - 1
	v.ws()
	if v.i >= len(v.data) || v.data[v.i] != ':' {
		return false
	}
	v.i++
	if v.recording && v.depth == 1 && v.inObject() && !v.rec.gjson {
		ms := &v.rec
		if ms.n == len(ms.list) || bytes.IndexByte(v.data[start:end], '\\') >= 0 || len(v.data) > math.MaxInt32 {
			ms.gjson = true
		} else {
			ms.list[ms.n] = member{keyStart: int32(start), keyEnd: int32(end), valStart: int32(v.i)}
			ms.n++
		}
	}
	return true
}

func (v *validator) lit(word string) bool {
	if len(v.data)-v.i < len(word) || string(v.data[v.i:v.i+len(word)]) != word {
		return false
	}
	v.i += len(word)
	return true
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specialMask flags (0x80 in the byte) the bytes of x that are control
// characters (< 0x20), quotes or backslashes: the only bytes that end a run
// of plain string content. Bytes above the lowest flagged one may be
// flagged wrongly (borrows), the lowest one is exact.
func specialMask(x uint64) uint64 {
	ctl := (x - lsb*0x20) &^ x
	q := x ^ (lsb * '"')
	q = (q - lsb) &^ q
	bs := x ^ (lsb * '\\')
	bs = (bs - lsb) &^ bs
	return (ctl | q | bs) & msb
}

// str reads the rest of a string after its opening quote, with the same
// rules as gjson: no control characters, valid escapes, \u with four hex
// digits. Bytes >= 0x80 are not checked (gjson does not either; invalid
// UTF-8 is handled where text is used).
func (v *validator) str() bool {
	d := v.data
	i := v.i
	for {
		// Skip plain content eight bytes at a time.
		for i+8 <= len(d) {
			if m := specialMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(d) && d[i] >= ' ' && d[i] != '"' && d[i] != '\\' {
			i++
		}
		if i >= len(d) {
			v.i = i
			return false
		}
		switch c := d[i]; {
		case c == '"':
			v.i = i + 1
			return true
		case c < ' ':
			v.i = i
			return false
		default: // backslash
			i++
			if i >= len(d) {
				v.i = i
				return false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					i++
					if i >= len(d) || !isHex(d[i]) {
						v.i = i
						return false
					}
				}
			default:
				v.i = i
				return false
			}
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (v *validator) number() bool {
	d := v.data
	i := v.i
	if d[i] == '-' {
		i++
	}
	if i >= len(d) || d[i] < '0' || d[i] > '9' {
		return false
	}
	if d[i] == '0' {
		i++
	} else {
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	v.i = i
	return true
}
