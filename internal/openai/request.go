// Package openai reads and rewrites OpenAI-compatible request and response
// bodies without unmarshalling them: a gjson view over the raw bytes, sjson
// rewrites, usage parsing, an incremental SSE scanner and OpenAI-style error
// bodies.
package openai

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Shape is the API a request body belongs to, told by its path.
type Shape int

// Shapes of request bodies.
const (
	ShapeUnknown     Shape = iota
	ShapeChat              // /v1/chat/completions
	ShapeCompletions       // /v1/completions
	ShapeEmbeddings        // /v1/embeddings
	ShapeResponses         // /v1/responses
)

func (s Shape) String() string {
	switch s {
	case ShapeChat:
		return "chat"
	case ShapeCompletions:
		return "completions"
	case ShapeEmbeddings:
		return "embeddings"
	case ShapeResponses:
		return "responses"
	}
	return "unknown"
}

// ShapeOf tells the API from a request path (query string ignored).
func ShapeOf(path string) Shape {
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			path = path[:i]
			break
		}
	}
	switch {
	case hasSuffix(path, "/chat/completions"):
		return ShapeChat
	case hasSuffix(path, "/completions"):
		return ShapeCompletions
	case hasSuffix(path, "/embeddings"):
		return ShapeEmbeddings
	case hasSuffix(path, "/responses"):
		return ShapeResponses
	}
	return ShapeUnknown
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// Errors returned by Parse.
var (
	ErrEmptyBody  = errors.New("request body is empty")
	ErrNotJSON    = errors.New("request body is not valid JSON")
	ErrNotObject  = errors.New("request body must be a JSON object")
	ErrTooDeep    = errors.New("request body nests JSON too deeply")
	ErrBadModel   = errors.New(`"model" must be a string`)
	ErrBadMessage = errors.New(`"messages" must be an array of objects`)

	errDupModel    = fmt.Errorf("%w, once: the key appears more than once", ErrBadModel)
	errDupMessages = fmt.Errorf("%w, once: the key (messages or input) appears more than once", ErrBadMessage)
)

// Request is a read-only view over a request body. It holds the body bytes
// and a few fields read eagerly; everything else is read on demand with
// gjson. The body must not be modified while the view is in use.
type Request struct {
	Body  []byte
	Shape Shape

	Model     string
	Stream    bool
	MaxTokens int64 // max_tokens, max_completion_tokens or max_output_tokens; 0 if absent
	User      string
	HasTools  bool
	// ResponseFormat is the response_format.type ("json_object",
	// "json_schema", "text"; "" when absent). For the responses API it is
	// read from text.format.type.
	ResponseFormat string
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool
	// MessageCount is the number of chat messages (or responses input items).
	MessageCount int
}

// Parse validates that body is a JSON object within maxDepth nesting levels
// and reads the routing fields. It does not unmarshal the body.
func Parse(body []byte, shape Shape, maxDepth int) (*Request, error) {
	r := &Request{}
	return r, r.Reset(body, shape, maxDepth)
}

// Reset re-points r at a new body, for reuse without allocation.
func (r *Request) Reset(body []byte, shape Shape, maxDepth int) error {
	*r = Request{Body: body, Shape: shape}
	if len(body) == 0 {
		return ErrEmptyBody
	}
	var val validator
	if err := val.check(body, maxDepth, true); err != nil {
		return err
	}
	ms := &val.rec
	// A string view of the body, not a copy (gjson.ParseBytes copies the
	// whole body; profiles showed it as the largest allocation for big
	// prompts). Results alias the body, which is never modified: rewrites
	// (sjson) build new slices.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return ErrNotObject
	}
	var rd memberReader
	if ms.gjson {
		// Too many members, or an escaped key: let gjson walk them.
		root.ForEach(func(key, v gjson.Result) bool {
			return rd.member(r, shape, key.Str, v, -1)
		})
		return rd.err
	}
	// The validator recorded the members: no second walk over the body.
	for i := range ms.n {
		m := &ms.list[i]
		key := unsafe.String(unsafe.SliceData(body[m.keyStart:]), m.keyEnd-m.keyStart)
		if !readsMember(key) {
			// Not parsed at all: gjson.Parse of a number is a ParseFloat
			// (temperature, top_p, ...), ~1.3 µs per request under load.
			continue
		}
		if n, ok := plainInt(body[m.valStart:m.valEnd]); ok && isMaxTokensKey(key) {
			// What member does with gjson's Int() of the same number,
			// without its ParseFloat.
			r.MaxTokens = max(r.MaxTokens, n)
			continue
		}
		v := gjson.Parse(unsafe.String(unsafe.SliceData(body[m.valStart:]), m.valEnd-m.valStart))
		if !rd.member(r, shape, key, v, int(m.elems)) {
			break
		}
	}
	return rd.err
}

// memberReader reads the routing fields from the top-level members.
type memberReader struct {
	err error
	// A duplicate "model" or "messages"/"input" key is refused: the router
	// reads the last copy, gjson paths (signals, the upstream model rewrite)
	// the first, and providers differ in which one they use, so a body with
	// two copies could be routed and scanned on one and served on the other.
	seenModel, seenMessages, seenInput bool
}

// The keys that cap the output, in the three APIs' spellings.
const (
	maxTokens           = "max_tokens"
	maxCompletionTokens = "max_completion_tokens"
	maxOutputTokens     = "max_output_tokens"
)

func isMaxTokensKey(key string) bool {
	return key == maxTokens || key == maxCompletionTokens || key == maxOutputTokens
}

// plainInt parses b when it is a JSON number written as 1 to 18 decimal
// digits (no sign, fraction or exponent), which gjson's Int() reads
// exactly; anything else is left to gjson.
func plainInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readsMember reports whether member does anything with key: exactly the
// keys of its switch (TestReadsMemberMatchesMember checks every other key
// is ignored).
func readsMember(key string) bool {
	switch key {
	case "model", "stream", maxTokens, maxCompletionTokens, maxOutputTokens, "user",
		"tools", "functions", "response_format", "text", "stream_options", "messages", "input":
		return true
	}
	return false
}

// member reads one member; elems is the element count of an array value
// (-1: count it). It returns false to stop, with rd.err set.
func (rd *memberReader) member(r *Request, shape Shape, key string, v gjson.Result, elems int) bool {
	count := func() int {
		if elems >= 0 {
			return elems
		}
		return countArray(v)
	}
	switch key {
	case "model":
		if v.Type != gjson.String {
			rd.err = ErrBadModel
			return false
		}
		if rd.seenModel {
			rd.err = errDupModel
			return false
		}
		rd.seenModel = true
		r.Model = v.Str
	case "stream":
		r.Stream = v.Type == gjson.True
	case maxTokens, maxCompletionTokens, maxOutputTokens:
		if v.Type == gjson.Number && v.Int() > r.MaxTokens {
			r.MaxTokens = v.Int()
		}
	case "user":
		if v.Type == gjson.String {
			r.User = v.Str
		}
	case "tools", "functions":
		r.HasTools = r.HasTools || (v.IsArray() && len(v.Raw) > 2)
	case "response_format":
		r.ResponseFormat = v.Get("type").Str
	case "text":
		if shape == ShapeResponses {
			r.ResponseFormat = v.Get("format.type").Str
		}
	case "stream_options":
		r.IncludeUsage = v.Get("include_usage").Type == gjson.True
	case "messages":
		if !v.IsArray() {
			rd.err = ErrBadMessage
			return false
		}
		if rd.seenMessages {
			rd.err = errDupMessages
			return false
		}
		rd.seenMessages = true
		r.MessageCount = count()
	case "input":
		if rd.seenInput {
			rd.err = errDupMessages
			return false
		}
		rd.seenInput = true
		if shape == ShapeResponses && v.IsArray() {
			r.MessageCount = count()
		} else if shape == ShapeResponses {
			r.MessageCount = 1
		}
	}
	return true
}

func countArray(v gjson.Result) int {
	n := 0
	v.ForEach(func(_, _ gjson.Result) bool { n++; return true })
	return n
}

// Get reads any field with a gjson path.
func (r *Request) Get(path string) gjson.Result { return gjson.GetBytes(r.Body, path) }

// Messages calls fn for each chat message (or responses input item) with its
// role and a view of its content; fn returns false to stop.
func (r *Request) Messages(fn func(role string, content gjson.Result) bool) {
	key := "messages"
	if r.Shape == ShapeResponses {
		key = "input"
	}
	v := gjson.GetBytes(r.Body, key)
	if v.Type == gjson.String { // responses API: "input": "text"
		fn("user", v)
		return
	}
	v.ForEach(func(_, m gjson.Result) bool {
		return fn(m.Get("role").Str, m.Get("content"))
	})
}

// ContentText calls fn with each text part of a message content: the string
// itself, or the "text" of {"type":"text"|"input_text"|"output_text"} parts.
// It returns the number of non-text parts (images, audio, files) skipped.
func ContentText(content gjson.Result, fn func(text string)) (skipped int) {
	switch {
	case content.Type == gjson.String:
		fn(content.Str)
	case content.IsArray():
		content.ForEach(func(_, part gjson.Result) bool {
			if part.Type == gjson.String {
				fn(part.Str)
				return true
			}
			switch part.Get("type").Str {
			case "text", "input_text", "output_text":
				fn(part.Get("text").Str)
			default:
				skipped++
			}
			return true
		})
	}
	return skipped
}

// Prompt returns the prompt of a completions request (string or first element of an array).
func (r *Request) Prompt() string {
	v := gjson.GetBytes(r.Body, "prompt")
	if v.IsArray() {
		return v.Get("0").Str
	}
	return v.Str
}
