package openai

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// MaxTokenCount is the largest token count accepted from a usage block. A
// larger (or negative, or fractional) count is a broken or hostile upstream,
// and trusting it would poison budgets and cost metrics; the block is then
// treated as absent and the caller falls back to an estimate.
const MaxTokenCount = 1 << 40

// Usage is the token usage of one request.
type Usage struct {
	InputTokens, OutputTokens int64
	// Estimated is set when the counts come from EstimateTokens rather than
	// from the provider's usage block.
	Estimated bool
}

// Cost is what one request cost and what it would have cost on the baseline
// model (the one clients would call without Switchyard), in US dollars.
type Cost struct {
	USD, BaselineUSD float64
}

// Price returns the cost of u at the given prices per million tokens.
func Price(u Usage, inPerMTok, outPerMTok float64) float64 {
	return (float64(u.InputTokens)*inPerMTok + float64(u.OutputTokens)*outPerMTok) / 1e6
}

// ParseUsage reads the usage block of a non-streaming response body:
// prompt_tokens and completion_tokens (chat completions, completions),
// input_tokens and output_tokens (responses API), or prompt_tokens alone
// (embeddings, output 0). ok is false when the block is missing, null or
// holds no valid count.
func ParseUsage(body []byte) (Usage, bool) {
	return usageOf(gjson.GetBytes(body, "usage"))
}

// UsageFromEvent reads the usage carried by one streaming event's data:
// the final chat.completion.chunk (or completions chunk) sent when
// stream_options.include_usage is on, or a responses-API
// response.completed / response.incomplete / response.failed event, whose
// usage is under "response". Events with "usage": null report ok=false.
func UsageFromEvent(data []byte) (Usage, bool) {
	// Nearly every chunk has no usage; look before parsing so those cost a
	// byte search, not a JSON walk.
	if !mayHaveUsage(data) {
		return Usage{}, false
	}
	if u, ok := usageOf(gjson.GetBytes(data, "usage")); ok {
		return u, true
	}
	switch gjson.GetBytes(data, "type").Str {
	case "response.completed", "response.incomplete", "response.failed":
		return usageOf(gjson.GetBytes(data, "response.usage"))
	}
	return Usage{}, false
}

// mayHaveUsage reports whether data contains a "usage" key followed by an
// object. It may say yes for text inside a string; never no for a real one.
func mayHaveUsage(data []byte) bool {
	for {
		i := bytes.Index(data, usageKey)
		if i < 0 {
			return false
		}
		data = data[i+len(usageKey):]
		j := 0
		for j < len(data) && isJSONSpace(data[j]) {
			j++
		}
		if j < len(data) && data[j] == ':' {
			j++
			for j < len(data) && isJSONSpace(data[j]) {
				j++
			}
			if j < len(data) && data[j] == '{' {
				return true
			}
		}
	}
}

var usageKey = []byte(`"usage"`)

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func usageOf(v gjson.Result) (Usage, bool) {
	// gjson reads leniently; a usage block cut off mid-way must not count.
	if !v.IsObject() || !gjson.Valid(v.Raw) {
		return Usage{}, false
	}
	var in, out gjson.Result
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens", "input_tokens":
			if !in.Exists() {
				in = val
			}
		case "completion_tokens", "output_tokens":
			if !out.Exists() {
				out = val
			}
		}
		return true
	})
	if !in.Exists() && !out.Exists() {
		return Usage{}, false
	}
	var u Usage
	var ok bool
	if in.Exists() {
		if u.InputTokens, ok = tokenCount(in); !ok {
			return Usage{}, false
		}
	}
	if out.Exists() {
		if u.OutputTokens, ok = tokenCount(out); !ok {
			return Usage{}, false
		}
	}
	return u, true
}

// tokenCount reads a non-negative integral count up to MaxTokenCount. null
// counts as 0 (some servers send "completion_tokens": null for embeddings).
func tokenCount(v gjson.Result) (int64, bool) {
	switch v.Type {
	case gjson.Null:
		return 0, true
	case gjson.Number:
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
		return n, n >= 0 && n <= MaxTokenCount
	}
	// 12.0 or 1e3: accept integral values in range; gjson's own Int()
	// would turn an out-of-range float into an arbitrary int64.
	f := v.Num
	if math.IsNaN(f) || f < 0 || f > MaxTokenCount || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// IsUsageOnlyChunk reports whether data is the extra final chunk that
// stream_options.include_usage adds: a chat.completion.chunk (or a legacy
// text_completion chunk) with an empty choices array and a usage object.
func IsUsageOnlyChunk(data []byte) bool {
	if !mayHaveUsage(data) || !gjson.ValidBytes(data) {
		return false
	}
	var choices, usage, object gjson.Result
	gjson.ParseBytes(data).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "object":
			object = v
		}
		return true
	})
	switch object.Str {
	case "chat.completion.chunk", "text_completion", "":
	default:
		return false
	}
	if !usage.IsObject() || !choices.IsArray() {
		return false
	}
	empty := true
	choices.ForEach(func(_, _ gjson.Result) bool { empty = false; return false })
	return empty
}

// EstimateTokens estimates the number of tokens in text when no usage block
// is available. It is a heuristic, not a tokenizer: about 4 bytes per token
// for ASCII (English prose and code, as OpenAI's own rule of thumb), one
// token per CJK character (Han, kana, Hangul), and about 3 characters per
// token for other scripts (Cyrillic, Greek, Arabic, Devanagari, accented
// Latin), rounded up. Invalid UTF-8 counts as ASCII. Expect errors of
// ±25% on prose, more on unusual text.
func EstimateTokens(text []byte) int64 {
	// Counted in twelfths of a token: ASCII byte 3, other rune 4, CJK rune 12.
	var units int64
	ascii := 0
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			ascii++
		case isCJK(r):
			units += 12
		default:
			units += 4
		}
	}
	units += 3 * int64(ascii)
	return (units + 11) / 12
}

// isCJK reports whether r is a Han ideograph, kana, Hangul or CJK
// punctuation: scripts tokenizers cover at roughly one token per character.
func isCJK(r rune) bool {
	switch {
	case r >= 0x3000 && r <= 0x30FF: // CJK punctuation, hiragana, katakana
		return true
	case r >= 0x3400 && r <= 0x4DBF, r >= 0x4E00 && r <= 0x9FFF, r >= 0xF900 && r <= 0xFAFF: // Han
		return true
	case r >= 0xAC00 && r <= 0xD7AF, r >= 0x1100 && r <= 0x11FF, r >= 0x3130 && r <= 0x318F: // Hangul
		return true
	case r >= 0xFF00 && r <= 0xFFEF: // full-width forms
		return true
	case r >= 0x20000 && r <= 0x3134F: // Han extensions B to G
		return true
	}
	return false
}

// ContentFromEvent appends to dst the generated text of one streaming
// event's data, for estimating output tokens when no usage arrives: chat
// chunks' choices[].delta content, refusal, reasoning_content and tool-call
// arguments; legacy completions chunks' choices[].text; and the delta of
// responses-API text, refusal, reasoning and function-call-argument delta
// events. Audio deltas (base64) are skipped.
func ContentFromEvent(data []byte, dst []byte) []byte {
	root := gjson.ParseBytes(data)
	if choices := root.Get("choices"); choices.IsArray() {
		choices.ForEach(func(_, c gjson.Result) bool {
			c.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "delta":
					dst = appendDelta(dst, v)
				case "text":
					dst = append(dst, v.Str...)
				}
				return true
			})
			return true
		})
		return dst
	}
	typ := root.Get("type").Str
	if len(typ) > len("response.") && typ[:len("response.")] == "response." && hasSuffix(typ, ".delta") && !isAudioEvent(typ) {
		if d := root.Get("delta"); d.Type == gjson.String {
			dst = append(dst, d.Str...)
		}
	}
	return dst
}

func isAudioEvent(typ string) bool {
	const p = "response.audio"
	return len(typ) >= len(p) && typ[:len(p)] == p
}

func appendDelta(dst []byte, delta gjson.Result) []byte {
	delta.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content", "refusal", "reasoning_content", "reasoning":
			if v.Type == gjson.String {
				dst = append(dst, v.Str...)
			}
		case "tool_calls":
			v.ForEach(func(_, tc gjson.Result) bool {
				dst = append(dst, tc.Get("function.arguments").Str...)
				return true
			})
		case "function_call":
			dst = append(dst, v.Get("arguments").Str...)
		}
		return true
	})
	return dst
}

// ForceIncludeUsage sets stream_options.include_usage to true on a streaming
// chat-completions or completions request body, so the final chunk carries
// the usage that accounting needs. It returns the body unchanged and false
// when the request does not stream, already asks for usage, is not one of
// those two shapes (the responses API always reports usage in
// response.completed and rejects unknown stream options) or is not a JSON
// object. Other bytes are kept as they were: the field is set in place, or
// added at the end of the object.
func ForceIncludeUsage(body []byte) ([]byte, bool) {
	if len(body) == 0 || checkJSON(body, 1<<20) != nil {
		return body, false
	}
	return forceIncludeUsage(body)
}

func forceIncludeUsage(body []byte) ([]byte, bool) {
	var stream, messages, prompt, opts gjson.Result
	// A view, not a copy (ParseBytes copies the body); results are only
	// read before the new body is built.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return body, false
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "stream":
			stream = v
		case "messages":
			messages = v
		case "prompt":
			prompt = v
		case "stream_options":
			opts = v
		}
		return true
	})
	if stream.Type != gjson.True || (!messages.Exists() && !prompt.Exists()) {
		return body, false
	}
	if opts.Get("include_usage").Type == gjson.True {
		return body, false
	}
	if !opts.Exists() {
		return appendMember(body, usageMember), true
	}
	var out []byte
	var err error
	if opts.IsObject() {
		out, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	} else { // absent, null or not an object
		out, err = sjson.SetRawBytes(body, "stream_options", []byte(`{"include_usage":true}`))
	}
	if err != nil {
		return body, false
	}
	return out, true
}

const usageMember = `"stream_options":{"include_usage":true}`

// appendMember returns a copy of the valid JSON object body with member
// added before its closing brace, in one allocation (sjson builds the result
// in several steps; this is the common case of every streaming request).
func appendMember(body []byte, member string) []byte {
	end := len(body) - 1
	for end > 0 && body[end] != '}' {
		end-- // trailing whitespace
	}
	last := end - 1
	for last > 0 && isJSONSpace(body[last]) {
		last--
	}
	sep := []byte(nil)
	if body[last] != '{' {
		sep = comma
	}
	// bytes.Join allocates without zeroing what it then overwrites (make
	// would clear the whole new body first).
	return bytes.Join([][]byte{body[:end], sep, unsafe.Slice(unsafe.StringData(member), len(member)), body[end:]}, nil)
}

var comma = []byte{','}
