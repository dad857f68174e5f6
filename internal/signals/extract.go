package signals

import (
	"github.com/switchyard-llm/switchyard/internal/openai"
)

// Token estimate constants (see EstTokens on Extraction). They follow the
// accounting OpenAI documents for chat models: a few tokens of framing per
// message plus a reply primer, ~4 bytes of English text per token, and a
// low-detail image as the floor for any non-text part.
const (
	bytesPerToken      = 4
	tokensPerMessage   = 4
	tokensReplyPrimer  = 3
	tokensSkippedPart  = 85
	turnSeparator      = "\n\n"
	partSeparator      = "\n"
	shortStringBufSize = 32
)

// Message roles as the extractor groups them.
const (
	roleOther  uint8 = iota // assistant, tool, function, unknown
	roleUser                // user (and completions prompt, embeddings input)
	roleSystem              // system, developer, responses "instructions"
)

// textPart is one JSON string literal (quotes included) viewing the body.
// Parts of a message are contiguous in Extraction.parts.
type textPart struct{ raw string }

type msgSpan struct {
	first, end int32 // parts[first:end]
	role       uint8
}

// Extraction is the text of one request as the classifiers see it: the
// last user turn first (it is what the request is about), then the system
// prompt, then earlier turns newest-first, cut to a byte limit on a UTF-8
// boundary. Turns are separated by a blank line, parts of one turn by a
// newline. An Extraction is reusable: Extract resets it and keeps its
// buffers, so a pooled one does not allocate in steady state.
type Extraction struct {
	// Text is the bounded classifier text. It views a reused buffer: copy
	// it before the Extraction is extracted again.
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

	parts []textPart
	msgs  []msgSpan
	// segs are the messages as written to Text, in Text order (separators
	// excluded; a message cut by the limit ends at the cut; messages
	// that left nothing in Text are absent).
	segs []segment
}

// segment is one message's text: Text[start:end].
type segment struct{ start, end int }

// LastUser returns the last user turn (possibly cut by the limit).
func (x *Extraction) LastUser() []byte { return x.Text[:x.LastUserLen] }

// Extract fills x from req with Text bounded to limit bytes (limit <= 0
// means no bound). It never fails: content it cannot read is skipped.
func (x *Extraction) Extract(req *openai.Request, limit int) {
	x.reset()
	if req == nil || len(req.Body) == 0 {
		return
	}
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	body := bytesString(req.Body)
	var messages, prompt, input, instructions string
	eachMember(body, func(k, v string) bool {
		switch {
		case keyIs(k, "messages"):
			messages = v
		case keyIs(k, "prompt"):
			prompt = v
		case keyIs(k, "input"):
			input = v
		case keyIs(k, "instructions"):
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
		eachElem(messages, func(m string) bool { x.addMessage(m); return true })
	case openai.ShapeResponses:
		conversation = true
		if isString(instructions) {
			x.addPart(x.newMsg(roleSystem), instructions)
		}
		if isString(input) {
			x.addPart(x.newMsg(roleUser), input)
		} else {
			eachElem(input, func(item string) bool {
				if isString(item) {
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

func (x *Extraction) reset() {
	clear(x.parts) // drop views of the previous body
	*x = Extraction{Text: x.Text[:0], parts: x.parts[:0], msgs: x.msgs[:0], segs: x.segs[:0]}
}

func (x *Extraction) newMsg(role uint8) int32 {
	n := int32(len(x.parts))
	x.msgs = append(x.msgs, msgSpan{role: role, first: n, end: n})
	return int32(len(x.msgs) - 1)
}

// addPart adds a part to msg, which must be the newest message (parts of
// one message stay contiguous).
func (x *Extraction) addPart(msg int32, raw string) {
	x.parts = append(x.parts, textPart{raw: raw})
	x.msgs[msg].end = int32(len(x.parts))
}

// addBatch reads a completions prompt or an embeddings input: a string, an
// array of strings, or token-id arrays (which are skipped), as one user turn.
func (x *Extraction) addBatch(v string) {
	if v == "" {
		return
	}
	m := x.newMsg(roleUser)
	if isString(v) {
		x.addPart(m, v)
		return
	}
	if v[0] != '[' {
		return
	}
	tokens := false
	eachElem(v, func(e string) bool {
		switch {
		case isString(e):
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
func (x *Extraction) addMessage(obj string) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	m := x.newMsg(roleOther)
	var buf [shortStringBufSize]byte
	eachMember(obj, func(k, v string) bool {
		switch {
		case keyIs(k, "role"):
			x.msgs[m].role = roleOf(stringValue(buf[:0], v))
		case keyIs(k, "content"):
			x.addContent(m, v)
		case keyIs(k, "tool_calls"):
			eachElem(v, func(call string) bool {
				if args := member(member(call, "function"), "arguments"); isString(args) {
					x.addPart(m, args)
				}
				return true
			})
		case keyIs(k, "output"), keyIs(k, "arguments"), keyIs(k, "refusal"):
			if isString(v) {
				x.addPart(m, v)
			}
		}
		return true
	})
}

func (x *Extraction) addContent(m int32, v string) {
	if isString(v) {
		x.addPart(m, v)
		return
	}
	eachElem(v, func(part string) bool {
		if isString(part) {
			x.addPart(m, part)
			return true
		}
		var typ, text string
		eachMember(part, func(k, pv string) bool {
			switch {
			case keyIs(k, "type"):
				typ = pv
			case keyIs(k, "text"):
				text = pv
			}
			return true
		})
		var buf [shortStringBufSize]byte
		switch stringValue(buf[:0], typ) {
		case "text", "input_text", "output_text":
			if isString(text) {
				x.addPart(m, text)
			}
		default:
			x.SkippedParts++
		}
		return true
	})
}

func roleOf(role string) uint8 {
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
func (x *Extraction) assemble(limit int) {
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
func (x *Extraction) writeMsg(i, limit int) {
	sep := turnSeparator
	if len(x.Text) == 0 {
		sep = ""
	}
	m := x.msgs[i]
	start := -1
	for _, p := range x.parts[m.first:m.end] {
		x.writeSep(sep, limit)
		if start < 0 {
			start = len(x.Text)
		}
		sep = partSeparator
		lim := limit
		if x.Truncated {
			lim = 0 // keep Text a prefix: nothing after a cut
		}
		before := len(x.Text)
		var nb, nr int
		x.Text, nb, nr = appendUnescaped(x.Text, p.raw, lim)
		x.PromptBytes += nb
		x.PromptChars += nr
		if len(x.Text)-before < nb {
			x.Truncated = true
		}
	}
	if start >= 0 && len(x.Text) > start {
		x.segs = append(x.segs, segment{start, len(x.Text)})
	}
}

func (x *Extraction) writeSep(sep string, limit int) {
	if sep == "" || x.Truncated {
		return
	}
	if len(x.Text)+len(sep) > limit {
		x.Truncated = true
		return
	}
	x.Text = append(x.Text, sep...)
}
