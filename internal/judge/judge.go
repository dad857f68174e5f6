// Package judge decides whether a cascade target may keep a cheap model's
// answer. The upstream role buffers the non-streaming response of every model
// but the last one in a cascade and asks a Judge; a failed Verdict becomes a
// retriable 5xx carrying the Reason, so Envoy's own retry moves the request to
// the next (stronger) priority level. The judge therefore has to be strict
// about what the client asked for (JSON, a schema) and conservative about
// everything else: a wrong "fail" costs a second, more expensive call, a wrong
// "pass" costs answer quality.
//
// Judges are pure: no I/O, no logging, no state but a bounded cache of
// compiled JSON schemas. They are safe for concurrent use.
package judge

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Reasons for a failed verdict. They are stable: they are the value of the
// x-switchyard-escalated header and a metric label.
const (
	ReasonInvalidJSON  = "invalid_json"
	ReasonSchema       = "schema_mismatch"
	ReasonLowLogprob   = "low_logprob"
	ReasonRefusal      = "refusal"
	ReasonEmpty        = "empty"
	ReasonTruncated    = "truncated"
	ReasonNotJSONBody  = "unreadable_response"
	defaultSchemaCache = 256
)

// Reasons lists every reason, for pre-registering metric label values.
var Reasons = []string{ReasonInvalidJSON, ReasonSchema, ReasonLowLogprob, ReasonRefusal, ReasonEmpty, ReasonTruncated, ReasonNotJSONBody}

// Bounds on the JSON the judge walks. Response bodies from providers are
// shallow (under ten levels); model-written JSON answers rarely exceed a few
// dozen. gjson's validator recurses, so depth is bounded before it runs.
const (
	maxBodyDepth    = 128
	maxContentDepth = 512
)

// Verdict is the outcome of one judgement. Detail is a short, human-readable
// explanation for logs; it never contains text from the model's answer.
type Verdict struct {
	OK     bool
	Reason string
	Detail string
}

// Judge checks responses against one target's judge configuration. It is
// immutable after New and safe for concurrent use.
type Judge struct {
	json, schema, refusal, empty, truncated bool
	minLogprob                              float64
	checkLogprob                            bool
	schemas                                 *schemaCache
}

// Option adjusts a Judge.
type Option func(*options)

type options struct{ schemaCacheSize int }

// WithSchemaCacheSize bounds the number of distinct compiled response schemas
// kept (default 256). Each entry holds the schema text and its compiled form.
func WithSchemaCacheSize(n int) Option { return func(o *options) { o.schemaCacheSize = n } }

// New compiles a judge from a target's judge configuration.
func New(cfg config.Judge, opts ...Option) (*Judge, error) {
	o := options{schemaCacheSize: defaultSchemaCache}
	for _, opt := range opts {
		opt(&o)
	}
	j := &Judge{
		json:      cfg.JSON,
		schema:    cfg.Schema,
		refusal:   cfg.Refusal,
		empty:     cfg.Empty,
		truncated: cfg.Truncated,
	}
	if lp := cfg.MinMeanLogprob; lp != nil {
		j.checkLogprob, j.minLogprob = true, *lp
	}
	if cfg.Schema {
		c, err := newSchemaCache(o.schemaCacheSize)
		if err != nil {
			return nil, err
		}
		j.schemas = c
	}
	return j, nil
}

// Stats reports the schema cache counters (all zero when schema checks are off).
func (j *Judge) Stats() SchemaStats {
	if j.schemas == nil {
		return SchemaStats{}
	}
	return j.schemas.stats()
}

var pass = Verdict{OK: true}

func fail(reason, detail string) Verdict { return Verdict{Reason: reason, Detail: detail} }

// Judge decides on one buffered response. status is the upstream HTTP status;
// only 2xx answers are judged, because everything else is already handled by
// Envoy's retry policy. body must be the decoded (not compressed) response.
//
// Checks run from the most to the least specific cause, and the first failing
// one decides: truncated, refusal, empty, invalid_json, schema_mismatch,
// low_logprob. A body that is not a readable chat completion, completion or
// responses-API object fails with unreadable_response whatever the flags.
func (j *Judge) Judge(req Request, status int, body []byte) Verdict {
	if status < 200 || status > 299 {
		return pass
	}
	if looksLikeEventStream(body) {
		// Streaming answers are never judged (see the README); if one gets
		// here the caller buffered a stream, and failing it would escalate
		// every streaming request.
		return Verdict{OK: true, Detail: "event stream not judged"}
	}
	if !depthWithin(body, maxBodyDepth) || !gjson.ValidBytes(body) {
		return fail(ReasonNotJSONBody, "response body is not JSON")
	}
	var a answer
	if d := a.read(body); d != "" {
		if a.skip {
			return Verdict{OK: true, Detail: d}
		}
		return fail(ReasonNotJSONBody, d)
	}

	if j.truncated && a.truncated != "" {
		return fail(ReasonTruncated, a.truncated)
	}
	if j.refusal {
		if a.refusal {
			return fail(ReasonRefusal, "refusal field set")
		}
		if !a.toolCalls && isRefusal(a.content) {
			return fail(ReasonRefusal, "answer opens with a refusal")
		}
	}
	if j.empty && !a.toolCalls && isBlank(a.content) {
		if a.noChoices {
			return fail(ReasonEmpty, "no choices")
		}
		return fail(ReasonEmpty, "no content and no tool calls")
	}
	// Tool calls are not the final answer: JSON mode and schemas apply to the
	// message that eventually answers the user, so there is nothing to check.
	var note string // why a check could not be made, for the passing verdict
	if !a.toolCalls {
		if j.json && req.WantJSON {
			if d := checkJSONText(a.content); d != "" {
				return fail(ReasonInvalidJSON, d)
			}
		}
		if j.schema && len(req.Schema) > 0 {
			v := j.schemas.check(req.Schema, a.content)
			if !v.OK {
				return v
			}
			note = v.Detail
		}
	}
	if j.checkLogprob && req.Logprobs {
		if mean, n := a.meanLogprob(); n > 0 && mean < j.minLogprob {
			return fail(ReasonLowLogprob, logprobDetail(mean, n, j.minLogprob))
		}
	}
	return Verdict{OK: true, Detail: note}
}

func logprobDetail(mean float64, n int, min float64) string {
	b := make([]byte, 0, 64)
	b = append(b, "mean logprob "...)
	b = strconv.AppendFloat(b, mean, 'f', 3, 64)
	b = append(b, " over "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, " tokens < "...)
	b = strconv.AppendFloat(b, min, 'f', 3, 64)
	return string(b)
}

// looksLikeEventStream reports whether body starts like text/event-stream.
func looksLikeEventStream(body []byte) bool {
	i := 0
	for i < len(body) && isSpace(body[i]) {
		i++
	}
	b := body[i:]
	return hasPrefix(b, "data:") || hasPrefix(b, "event:") || (len(b) > 0 && b[0] == ':')
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}

// checkJSONText reports why s is not a JSON object or array, or "" if it is.
// JSON mode means raw JSON: a Markdown code fence is a failure, surrounding
// whitespace is not.
func checkJSONText(s string) string {
	t := trimSpace(s)
	if t == "" {
		return "empty answer"
	}
	if t[0] != '{' && t[0] != '[' {
		if len(t) >= 3 && t[:3] == "```" {
			return "answer is a fenced code block, not raw JSON"
		}
		return "answer is not a JSON object or array"
	}
	if !depthWithin(t, maxContentDepth) {
		return "answer JSON nests too deeply"
	}
	if !gjson.Valid(t) {
		return "answer is not valid JSON"
	}
	return ""
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// depthWithin reports whether the JSON-ish text b nests at most max levels of
// objects and arrays. One linear pass, no allocation, no recursion; strings
// are skipped (with IndexByte, as answers are mostly string bytes) so
// brackets inside them do not count.
func depthWithin[T string | []byte](b T, max int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i+1)
			if end < 0 {
				return true // unterminated string: nothing more nests
			}
			i = end
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

// stringEnd returns the index of the quote closing a JSON string whose body
// starts at from, or -1. A quote is escaped when an odd number of
// backslashes precede it.
func stringEnd[T string | []byte](b T, from int) int {
	for from < len(b) {
		q := indexByte(b[from:], '"')
		if q < 0 {
			return -1
		}
		q += from
		n := 0
		for k := q - 1; k >= from && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		from = q + 1
	}
	return -1
}

func indexByte[T string | []byte](b T, c byte) int {
	switch v := any(b).(type) {
	case string:
		return strings.IndexByte(v, c)
	case []byte:
		return bytes.IndexByte(v, c)
	}
	return -1
}
