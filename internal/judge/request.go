package judge

import "github.com/tidwall/gjson"

// Request is what the judge needs from the client's request body.
type Request struct {
	// WantJSON is set when the client asked for JSON mode or structured
	// output (response_format.type, or text.format.type in the responses
	// API, is json_object or json_schema).
	WantJSON bool
	// Schema is the raw JSON schema of a json_schema response format, nil
	// when there is none. It is a copy, not a view into the request body.
	Schema []byte
	// Logprobs is set when the client asked for token log-probabilities.
	// min_mean_logprob applies only then: an upstream role that adds
	// logprobs to the cheap model's request for judging must set it too.
	Logprobs bool
}

// RequestFromBody reads a chat-completions, completions or responses-API
// request body in one pass over its top-level keys. Invalid JSON yields the
// zero Request, which disables the JSON, schema and logprob checks.
func RequestFromBody(body []byte) Request {
	var r Request
	if !gjson.ValidBytes(body) {
		return r
	}
	// One copy of the body; the results below are substrings of it.
	root := gjson.Parse(string(body))
	if !root.IsObject() {
		return r
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "response_format": // chat completions: {type, json_schema: {name, schema, strict}}
			r.format(v.Get("type").Str, v.Get("json_schema.schema"))
		case "text": // responses API: {format: {type, name, schema, strict}}
			if f := v.Get("format"); f.IsObject() {
				r.format(f.Get("type").Str, f.Get("schema"))
			}
		case "logprobs": // chat: true; legacy completions: an integer (0 still returns sampled-token logprobs)
			r.Logprobs = r.Logprobs || v.Type == gjson.True || (v.Type == gjson.Number && v.Num >= 0)
		case "top_logprobs":
			r.Logprobs = r.Logprobs || (v.Type == gjson.Number && v.Num > 0)
		case "include": // responses API: ["message.output_text.logprobs", ...]
			v.ForEach(func(_, inc gjson.Result) bool {
				if inc.Str == "message.output_text.logprobs" {
					r.Logprobs = true
					return false
				}
				return true
			})
		}
		return true
	})
	return r
}

func (r *Request) format(typ string, schema gjson.Result) {
	switch typ {
	case "json_object":
		r.WantJSON = true
	case "json_schema":
		r.WantJSON = true
		if schema.IsObject() || schema.Type == gjson.True || schema.Type == gjson.False {
			r.Schema = []byte(schema.Raw)
		}
	}
}
