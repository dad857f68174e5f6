package judge

import (
	"math"
	"strings"

	"github.com/tidwall/gjson"
)

type logprobShape uint8

const (
	lpNone        logprobShape = iota
	lpChat                     // choices[0].logprobs.content[].logprob
	lpCompletions              // choices[0].logprobs.token_logprobs[]
	lpResponses                // output[].content[].logprobs[].logprob
)

// answer is what the checks need from a response body, read in one pass.
// Its strings are views into one copy of the body made by read.
type answer struct {
	content   string // answer text; parts joined when there are several
	refusal   bool   // an explicit refusal field or part
	toolCalls bool   // the model called a tool instead of (or besides) answering
	noChoices bool   // a chat completion whose choices array is empty
	truncated string // detail when the answer was cut off, "" otherwise
	skip      bool   // set with a read detail: not judgeable, let it pass

	lpShape logprobShape
	lp      gjson.Result // the logprob array (chat, completions) or output (responses)
}

// read fills a from a valid JSON body. It returns "" on success, or a short
// reason the body is not a judgeable answer (with a.skip set when the answer
// should pass anyway).
func (a *answer) read(body []byte) string {
	// One copy of the body; every gjson result below is a substring of it,
	// so field reads do not allocate.
	root := gjson.Parse(string(body))
	if !root.IsObject() {
		return "response body is not a JSON object"
	}
	var choices, output, status, object, incomplete gjson.Result
	hasError := false
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "choices":
			choices = v
		case "output":
			output = v
		case "status":
			status = v
		case "object":
			object = v
		case "incomplete_details":
			incomplete = v
		case "error":
			hasError = v.IsObject()
		}
		return true
	})
	switch {
	case choices.IsArray():
		return a.readChoice(choices.Get("0"))
	case output.IsArray():
		return a.readResponse(output, status.Str, incomplete)
	case object.Str == "list":
		a.skip = true
		return "not a generation response"
	case hasError:
		return "response is an error object"
	}
	return "not a chat completion or response object"
}

// readChoice reads the first choice of a chat completion or a legacy
// completion. Only the first choice is judged: with n > 1 the client gets
// every choice, and the first is the one SDK helpers surface.
func (a *answer) readChoice(c gjson.Result) string {
	if !c.Exists() {
		a.noChoices = true
		return ""
	}
	if !c.IsObject() {
		return "choice is not an object"
	}
	var msg, text, logprobs gjson.Result
	c.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "finish_reason":
			if v.Str == "length" {
				a.truncated = "finish_reason=length"
			}
		case "message":
			msg = v
		case "text":
			text = v
		case "logprobs":
			logprobs = v
		}
		return true
	})
	switch {
	case msg.IsObject():
		var transcript string
		msg.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content":
				a.content = textOf(v)
			case "audio": // audio output: content is null, the words are in the transcript
				transcript = v.Get("transcript").Str
			case "refusal":
				a.refusal = v.Type == gjson.String && !isBlank(v.Str)
			case "tool_calls":
				a.toolCalls = a.toolCalls || nonEmptyArray(v)
			case "function_call":
				a.toolCalls = a.toolCalls || v.IsObject()
			}
			return true
		})
		if isBlank(a.content) {
			a.content = transcript
		}
		if lp := logprobs.Get("content"); lp.IsArray() {
			a.lpShape, a.lp = lpChat, lp
		}
	case text.Type == gjson.String || (text.Exists() && text.Type == gjson.Null):
		a.content = text.Str
		if lp := logprobs.Get("token_logprobs"); lp.IsArray() {
			a.lpShape, a.lp = lpCompletions, lp
		}
	default:
		return "choice has neither message nor text"
	}
	return ""
}

// readResponse reads a responses-API object: output items of type message
// carry output_text and refusal parts; items of any *_call type (and MCP
// approval requests) are tool use.
func (a *answer) readResponse(output gjson.Result, status string, incomplete gjson.Result) string {
	switch status {
	case "incomplete":
		a.truncated = "status=incomplete"
		switch incomplete.Get("reason").Str {
		case "max_output_tokens":
			a.truncated = "status=incomplete (max_output_tokens)"
		case "content_filter":
			a.truncated = "status=incomplete (content_filter)"
		}
	case "queued", "in_progress":
		// Background mode: the answer does not exist yet. Failing it would
		// start a second background job on the stronger model.
		a.skip = true
		return "background response not judged"
	case "failed", "cancelled":
		return "response status=" + status
	}
	var joined []byte
	parts := 0
	output.ForEach(func(_, item gjson.Result) bool {
		typ := item.Get("type").Str
		if strings.HasSuffix(typ, "_call") || typ == "mcp_approval_request" {
			a.toolCalls = true
			return true
		}
		if typ != "message" {
			return true // reasoning summaries and the like are not the answer
		}
		item.Get("content").ForEach(func(_, part gjson.Result) bool {
			switch part.Get("type").Str {
			case "output_text":
				t := part.Get("text").Str
				switch parts++; parts {
				case 1:
					a.content = t
				case 2:
					joined = append(append(joined, a.content...), t...)
				default:
					joined = append(joined, t...)
				}
			case "refusal":
				a.refusal = a.refusal || !isBlank(part.Get("refusal").Str)
			}
			return true
		})
		return true
	})
	if parts > 1 {
		a.content = string(joined)
	}
	a.lpShape, a.lp = lpResponses, output
	return ""
}

// meanLogprob averages the token log-probabilities of the answer. n is 0 when
// the response carries none.
func (a *answer) meanLogprob() (mean float64, n int) {
	var sum float64
	add := func(v gjson.Result) {
		if v.Type != gjson.Number {
			return // completions report null for the first echoed token
		}
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return
		}
		sum += f
		n++
	}
	switch a.lpShape {
	case lpChat:
		a.lp.ForEach(func(_, tok gjson.Result) bool { add(tok.Get("logprob")); return true })
	case lpCompletions:
		a.lp.ForEach(func(_, v gjson.Result) bool { add(v); return true })
	case lpResponses:
		a.lp.ForEach(func(_, item gjson.Result) bool {
			if item.Get("type").Str != "message" {
				return true
			}
			item.Get("content").ForEach(func(_, part gjson.Result) bool {
				if part.Get("type").Str == "output_text" {
					part.Get("logprobs").ForEach(func(_, tok gjson.Result) bool { add(tok.Get("logprob")); return true })
				}
				return true
			})
			return true
		})
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

// textOf returns the text of a message content: a string, or the text parts
// of a content array joined (some OpenAI-compatible servers answer with parts).
func textOf(v gjson.Result) string {
	switch {
	case v.Type == gjson.String:
		return v.Str
	case v.IsArray():
		var b strings.Builder
		v.ForEach(func(_, part gjson.Result) bool {
			if part.Type == gjson.String {
				b.WriteString(part.Str)
				return true
			}
			switch part.Get("type").Str {
			case "text", "output_text":
				b.WriteString(part.Get("text").Str)
			}
			return true
		})
		return b.String()
	}
	return ""
}

func nonEmptyArray(v gjson.Result) bool {
	if !v.IsArray() {
		return false
	}
	found := false
	v.ForEach(func(_, _ gjson.Result) bool { found = true; return false })
	return found
}
