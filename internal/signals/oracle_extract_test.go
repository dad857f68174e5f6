package signals

// Test-only oracle: verbatim copies of the request text extractor and its
// JSON walker (extract.go, jsonwalk.go) as they were before the string
// scanning was rewritten for speed. oracle_extract_diff_test.go checks that
// the production code gives identical results on arbitrary bodies.
// Identifiers carry an "old" prefix; the code is otherwise unchanged.

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/switchyard-llm/switchyard/internal/openai"
)

// A minimal, allocation-free walker over raw JSON text. gjson unescapes
// every string value it returns into a fresh string, and GetBytes copies the
// result's raw text; on the request hot path both cost one allocation per
// message. This walker hands out raw views into the body instead and the
// extractor unescapes straight into its pooled buffer.
//
// The body has normally been validated by openai.Parse, but nothing here
// trusts that: every index is bounds-checked and malformed input ends the
// walk early instead of panicking.

// oldSkipWS returns the index of the first non-space byte at or after i.
func oldSkipWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// oldSkipString returns the index just past the string literal starting at
// s[i] == '"', or len(s) when it is unterminated. It jumps from quote to
// quote (strings.IndexByte is vectorised) and counts the backslashes in
// front of each to tell an escaped quote from the closing one.
func oldSkipString(s string, i int) int {
	start := i + 1
	for j := start; j < len(s); {
		q := strings.IndexByte(s[j:], '"')
		if q < 0 {
			return len(s)
		}
		q += j
		n := 0
		for k := q - 1; k >= start && s[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return len(s)
}

// oldSkipValue returns the index just past the JSON value starting at s[i].
func oldSkipValue(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	switch s[i] {
	case '"':
		return oldSkipString(s, i)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				i = oldSkipString(s, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(s)
	}
	for ; i < len(s); i++ {
		switch s[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(s)
}

// oldEachMember calls fn with the raw key (quotes included) and raw value of
// each oldMember of the object obj; fn returns false to stop.
func oldEachMember(obj string, fn func(key, val string) bool) {
	i := oldSkipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = oldSkipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		ke := oldSkipString(obj, i)
		key := obj[i:ke]
		i = oldSkipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = oldSkipWS(obj, i+1)
		ve := oldSkipValue(obj, i)
		if ve <= i || !fn(key, obj[i:ve]) {
			return
		}
		i = oldSkipWS(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// oldEachElem calls fn with the raw text of each element of the array arr.
func oldEachElem(arr string, fn func(val string) bool) {
	i := oldSkipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	i = oldSkipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return
	}
	for {
		i = oldSkipWS(arr, i)
		ve := oldSkipValue(arr, i)
		if ve <= i || !fn(arr[i:ve]) {
			return
		}
		i = oldSkipWS(arr, ve)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i++
	}
}

// oldMember returns the raw value of the last oldMember of obj named key (JSON
// parsers used by providers keep the last duplicate), or "".
func oldMember(obj, key string) string {
	var out string
	oldEachMember(obj, func(k, v string) bool {
		if oldKeyIs(k, key) {
			out = v
		}
		return true
	})
	return out
}

// oldKeyIs reports whether the raw key literal (with quotes) decodes to want.
// Keys spelled with escapes ("c\u006fntent") must match too, or a client
// could hide text from the classifiers that the provider still reads.
func oldKeyIs(raw, want string) bool {
	if len(raw) < 2 {
		return false
	}
	in := raw[1 : len(raw)-1]
	if len(in) == len(want) && in == want {
		return true
	}
	if len(in) <= len(want) || len(in) > 6*len(want) {
		return false
	}
	var buf [64]byte
	if len(want) > len(buf) {
		return false
	}
	dec, _, _ := oldAppendUnescaped(buf[:0], raw, len(buf))
	return string(dec) == want
}

// oldIsString reports whether raw is a JSON string literal.
func oldIsString(raw string) bool { return len(raw) >= 2 && raw[0] == '"' }

// oldStringValue decodes a short raw string literal such as a role or a part
// type into buf without allocating; longer values come back truncated,
// which is fine for the enumerations it is used on.
func oldStringValue(buf []byte, raw string) string {
	if !oldIsString(raw) {
		return ""
	}
	dec, _, _ := oldAppendUnescaped(buf[:0], raw, cap(buf))
	return oldBytesString(dec)
}

// oldAppendUnescaped decodes the JSON string literal raw (quotes included) and
// appends it to dst up to limit bytes in total, never splitting a UTF-8
// sequence; once something did not fit nothing more is written, so the
// output is always a prefix of the decoded text. It always reads the whole
// literal and returns the decoded length in bytes and runes, written or not.
func oldAppendUnescaped(dst []byte, raw string, limit int) (out []byte, nbytes, nrunes int) {
	if len(raw) < 2 || raw[0] != '"' {
		return dst, 0, 0
	}
	full := false
	s := raw[1:]
	if s[len(s)-1] == '"' {
		s = s[:len(s)-1]
	}
	for len(s) > 0 {
		// Copy the run up to the next escape in one go.
		j := oldIndexByte(s, '\\')
		run := s
		if j >= 0 {
			run = s[:j]
		}
		if len(run) > 0 {
			nbytes += len(run)
			nrunes += oldRuneCount(run)
			if !full {
				dst, full = oldAppendBounded(dst, run, limit)
			}
			s = s[len(run):]
			continue
		}
		// s[0] == '\\'
		if len(s) < 2 {
			break
		}
		var r rune
		adv := 2
		switch s[1] {
		case 'n':
			r = '\n'
		case 't':
			r = '\t'
		case 'r':
			r = '\r'
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'u':
			r, adv = oldDecodeU(s)
		default: // '"', '\\', '/' and anything malformed
			r = rune(s[1])
		}
		var enc [utf8.UTFMax]byte
		n := utf8.EncodeRune(enc[:], r)
		nbytes += n
		nrunes++
		if !full {
			dst, full = oldAppendBounded(dst, oldBytesString(enc[:n]), limit)
		}
		if adv > len(s) {
			adv = len(s)
		}
		s = s[adv:]
	}
	return dst, nbytes, nrunes
}

// oldDecodeU decodes \uXXXX (and a following low surrogate) at the start of s.
func oldDecodeU(s string) (rune, int) {
	r1, ok := oldHex4(s, 2)
	if !ok {
		return utf8.RuneError, 2
	}
	if utf16.IsSurrogate(r1) {
		if r2, ok := oldHex4(s, 8); ok && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r1, 6
}

func oldHex4(s string, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[at : at+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// oldAppendBounded appends s to dst up to limit bytes in total, backing off to
// a rune boundary so the result stays valid UTF-8 where s was. full is true
// when s did not fit whole.
func oldAppendBounded(dst []byte, s string, limit int) (out []byte, full bool) {
	room := limit - len(dst)
	if len(s) <= room {
		return append(dst, s...), false
	}
	if room <= 0 {
		return dst, true
	}
	cut := room
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return append(dst, s[:cut]...), true
}

// oldRuneCount counts the characters of s as the bytes that do not continue a
// UTF-8 sequence, eight bytes at a time. For valid UTF-8 it equals
// utf8.RuneCountInString; stray continuation bytes are not counted.
func oldRuneCount(s string) int {
	n := len(s)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		if w&0x8080808080808080 == 0 {
			continue
		}
		// continuation bytes are 10xxxxxx: bit 7 set, bit 6 clear
		n -= bits.OnesCount64(w & ^(w << 1) & 0x8080808080808080)
	}
	for ; i < len(s); i++ {
		if s[i]&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

func oldIndexByte(s string, c byte) int { return strings.IndexByte(s, c) }

// oldBytesString views b as a string without copying; b must not change
// while the string is in use.
func oldBytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// oldTextPart is one JSON string literal (quotes included) viewing the body.
// Parts of a message are contiguous in oldExtraction.parts.
type oldTextPart struct{ raw string }

type oldMsgSpan struct {
	first, end int32 // parts[first:end]
	role       uint8
}

// oldExtraction is the text of one request as the classifiers see it: the
// last user turn first (it is what the request is about), then the system
// prompt, then earlier turns newest-first, cut to a byte limit on a UTF-8
// boundary. Turns are separated by a blank line, parts of one turn by a
// newline. An oldExtraction is reusable: Extract resets it and keeps its
// buffers, so a pooled one does not allocate in steady state.
type oldExtraction struct {
	// Text is the bounded classifier text. It views a reused buffer: copy
	// it before the oldExtraction is extracted again.
	Text []byte
	// LastUserLen is the length of the last user turn at the start of Text
	// (0 when the request has no user turn).
	LastUserLen int
	// SystemEnd ends the system prompts, which follow the last user turn:
	// Text[LastUserLen:SystemEnd] (separators included) is the system
	// prompt, Text[SystemEnd:] the earlier turns.
	SystemEnd int
	// Messages is the number of turns found (the responses "instructions"
	// count as one); SystemMessages how many of them are system/developer.
	Messages       int
	SystemMessages int
	// PromptChars and PromptBytes measure the whole decoded text of all
	// turns before truncation, separators excluded.
	PromptChars int
	PromptBytes int
	// EstTokens estimates the request's input tokens:
	//   ceil(PromptBytes/4) + 85 per skipped part
	//   + (conversations only) 4 per message + 3.
	// Bytes, not characters, so that scripts with multi-byte characters
	// (which also take more tokens per character) are not underestimated.
	EstTokens int
	// SkippedParts counts content the classifiers cannot read: images,
	// audio, files, token-id arrays.
	SkippedParts int
	// Truncated is true when Text is shorter than the whole text.
	Truncated bool

	parts []oldTextPart
	msgs  []oldMsgSpan
}

// LastUser returns the last user turn (possibly cut by the limit).
func (x *oldExtraction) LastUser() []byte { return x.Text[:x.LastUserLen] }

// Extract fills x from req with Text bounded to limit bytes (limit <= 0
// means no bound). It never fails: content it cannot read is skipped.
func (x *oldExtraction) Extract(req *openai.Request, limit int) {
	x.reset()
	if req == nil || len(req.Body) == 0 {
		return
	}
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	body := oldBytesString(req.Body)
	var messages, prompt, input, instructions string
	oldEachMember(body, func(k, v string) bool {
		switch {
		case oldKeyIs(k, "messages"):
			messages = v
		case oldKeyIs(k, "prompt"):
			prompt = v
		case oldKeyIs(k, "input"):
			input = v
		case oldKeyIs(k, "instructions"):
			instructions = v
		}
		return true
	})
	shape := req.Shape
	if shape == openai.ShapeUnknown {
		switch {
		case messages != "":
			shape = openai.ShapeChat
		case prompt != "":
			shape = openai.ShapeCompletions
		case input != "":
			shape = openai.ShapeResponses
		}
	}
	conversation := false
	switch shape {
	case openai.ShapeChat:
		conversation = true
		oldEachElem(messages, func(m string) bool { x.addMessage(m); return true })
	case openai.ShapeResponses:
		conversation = true
		if oldIsString(instructions) {
			x.addPart(x.newMsg(roleSystem), instructions)
		}
		if oldIsString(input) {
			x.addPart(x.newMsg(roleUser), input)
		} else {
			oldEachElem(input, func(item string) bool {
				if oldIsString(item) {
					x.addPart(x.newMsg(roleUser), item)
				} else {
					x.addMessage(item)
				}
				return true
			})
		}
	case openai.ShapeCompletions:
		x.addBatch(prompt)
	case openai.ShapeEmbeddings:
		x.addBatch(input)
	}
	x.assemble(limit)
	x.Messages = len(x.msgs)
	x.EstTokens = (x.PromptBytes+bytesPerToken-1)/bytesPerToken + tokensSkippedPart*x.SkippedParts
	if conversation && x.Messages > 0 {
		x.EstTokens += tokensPerMessage*x.Messages + tokensReplyPrimer
	}
}

func (x *oldExtraction) reset() {
	clear(x.parts) // drop views of the previous body
	*x = oldExtraction{Text: x.Text[:0], parts: x.parts[:0], msgs: x.msgs[:0]}
}

func (x *oldExtraction) newMsg(role uint8) int32 {
	n := int32(len(x.parts))
	x.msgs = append(x.msgs, oldMsgSpan{role: role, first: n, end: n})
	return int32(len(x.msgs) - 1)
}

// addPart adds a part to msg, which must be the newest message (parts of
// one message stay contiguous).
func (x *oldExtraction) addPart(msg int32, raw string) {
	x.parts = append(x.parts, oldTextPart{raw: raw})
	x.msgs[msg].end = int32(len(x.parts))
}

// addBatch reads a completions prompt or an embeddings input: a string, an
// array of strings, or token-id arrays (which are skipped), as one user turn.
func (x *oldExtraction) addBatch(v string) {
	if v == "" {
		return
	}
	m := x.newMsg(roleUser)
	if oldIsString(v) {
		x.addPart(m, v)
		return
	}
	if v[0] != '[' {
		return
	}
	tokens := false
	oldEachElem(v, func(e string) bool {
		switch {
		case oldIsString(e):
			x.addPart(m, e)
		case e[0] == '[':
			x.SkippedParts++
		default:
			tokens = true // a flat token-id array: one prompt
		}
		return true
	})
	if tokens {
		x.SkippedParts++
	}
}

// addMessage reads one chat message or responses input item. Every text a
// provider would read is kept: content (string or parts), tool-call
// arguments, tool outputs, refusals; duplicate keys are all read, so
// {"content":"a","content":"b"} cannot hide "b".
func (x *oldExtraction) addMessage(obj string) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	m := x.newMsg(roleOther)
	var buf [shortStringBufSize]byte
	oldEachMember(obj, func(k, v string) bool {
		switch {
		case oldKeyIs(k, "role"):
			x.msgs[m].role = oldRoleOf(oldStringValue(buf[:0], v))
		case oldKeyIs(k, "content"):
			x.addContent(m, v)
		case oldKeyIs(k, "tool_calls"):
			oldEachElem(v, func(call string) bool {
				if args := oldMember(oldMember(call, "function"), "arguments"); oldIsString(args) {
					x.addPart(m, args)
				}
				return true
			})
		case oldKeyIs(k, "output"), oldKeyIs(k, "arguments"), oldKeyIs(k, "refusal"):
			if oldIsString(v) {
				x.addPart(m, v)
			}
		}
		return true
	})
}

func (x *oldExtraction) addContent(m int32, v string) {
	if oldIsString(v) {
		x.addPart(m, v)
		return
	}
	oldEachElem(v, func(part string) bool {
		if oldIsString(part) {
			x.addPart(m, part)
			return true
		}
		var typ, text string
		oldEachMember(part, func(k, pv string) bool {
			switch {
			case oldKeyIs(k, "type"):
				typ = pv
			case oldKeyIs(k, "text"):
				text = pv
			}
			return true
		})
		var buf [shortStringBufSize]byte
		switch oldStringValue(buf[:0], typ) {
		case "text", "input_text", "output_text":
			if oldIsString(text) {
				x.addPart(m, text)
			}
		default:
			x.SkippedParts++
		}
		return true
	})
}

func oldRoleOf(role string) uint8 {
	switch role {
	case "user":
		return roleUser
	case "system", "developer":
		return roleSystem
	}
	return roleOther
}

// assemble writes the turns into Text in classifier order and measures the
// whole text on the way.
func (x *oldExtraction) assemble(limit int) {
	lastUser := -1
	for i := len(x.msgs) - 1; i >= 0; i-- {
		if x.msgs[i].role == roleUser {
			lastUser = i
			break
		}
	}
	if lastUser >= 0 {
		x.writeMsg(lastUser, limit)
		x.LastUserLen = len(x.Text)
	}
	for i := range x.msgs {
		if x.msgs[i].role == roleSystem {
			x.SystemMessages++
			if i != lastUser {
				x.writeMsg(i, limit)
			}
		}
	}
	x.SystemEnd = len(x.Text)
	for i := len(x.msgs) - 1; i >= 0; i-- {
		if i != lastUser && x.msgs[i].role != roleSystem {
			x.writeMsg(i, limit)
		}
	}
}

// writeMsg appends the parts of message i.
func (x *oldExtraction) writeMsg(i, limit int) {
	sep := turnSeparator
	if len(x.Text) == 0 {
		sep = ""
	}
	m := x.msgs[i]
	for _, p := range x.parts[m.first:m.end] {
		x.writeSep(sep, limit)
		sep = partSeparator
		lim := limit
		if x.Truncated {
			lim = 0 // keep Text a prefix: nothing after a cut
		}
		before := len(x.Text)
		var nb, nr int
		x.Text, nb, nr = oldAppendUnescaped(x.Text, p.raw, lim)
		x.PromptBytes += nb
		x.PromptChars += nr
		if len(x.Text)-before < nb {
			x.Truncated = true
		}
	}
}

func (x *oldExtraction) writeSep(sep string, limit int) {
	if sep == "" || x.Truncated {
		return
	}
	if len(x.Text)+len(sep) > limit {
		x.Truncated = true
		return
	}
	x.Text = append(x.Text, sep...)
}
