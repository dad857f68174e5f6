package openai

import (
	"strconv"
	"unicode/utf8"
)

// Error types used in OpenAI-style error bodies.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypePermission     = "permission_error"
	TypeServer         = "server_error"
	TypeNotFound       = "not_found_error"
)

// ErrorBody returns `{"error":{"message":...,"type":...,"code":...}}`, the
// shape OpenAI SDKs parse. Strings are escaped by hand to keep this off the
// reflection path; invalid UTF-8 is replaced.
func ErrorBody(message, typ, code string) []byte {
	b := make([]byte, 0, 48+len(message)+len(typ)+len(code))
	b = append(b, `{"error":{"message":`...)
	b = AppendJSONString(b, message)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, typ)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, code)
	}
	return append(b, "}}"...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal, escaping control
// characters, quotes, backslashes, and replacing invalid UTF-8 with U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// AppendJSONFloat appends f in the shortest form that round-trips.
func AppendJSONFloat(b []byte, f float64) []byte { return strconv.AppendFloat(b, f, 'g', -1, 64) }
