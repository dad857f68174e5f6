package policy

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Limits on what a decision may carry: it becomes an HTTP status, an error
// body and request headers, so it is checked like outside input.
const (
	maxReasonBytes      = 256
	maxMessageBytes     = 4096
	maxDecisionHeaders  = 32
	maxHeaderNameBytes  = 128
	maxHeaderValueBytes = 4096
)

var (
	keyAllow   = ast.StringTerm("allow")
	keyStatus  = ast.StringTerm("status")
	keyMessage = ast.StringTerm("message")
)

// decodeDecision reads the decision object. allow is required and must be a
// boolean; target, reason and message are optional strings; status is an
// optional integer in 100-599; headers an optional object of strings with
// valid header names (lower-cased here) and values without control
// characters. Unknown keys are ignored so policies can carry extra fields
// for their own tests.
func decodeDecision(t *ast.Term) (Decision, error) {
	var d Decision
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return d, fmt.Errorf("%w: the decision is %s, want an object", ErrInvalidDecision, ast.ValueName(t.Value))
	}
	allow := obj.Get(keyAllow)
	if allow == nil {
		return d, fmt.Errorf("%w: allow is missing", ErrInvalidDecision)
	}
	b, ok := allow.Value.(ast.Boolean)
	if !ok {
		return d, fmt.Errorf("%w: allow is %s, want a boolean", ErrInvalidDecision, ast.ValueName(allow.Value))
	}
	d.Allow = bool(b)
	var err error
	if d.Target, err = optString(obj, keyTarget, maxReasonBytes); err != nil {
		return Decision{}, err
	}
	if d.Reason, err = optString(obj, keyReason, maxReasonBytes); err != nil {
		return Decision{}, err
	}
	if d.Message, err = optString(obj, keyMessage, maxMessageBytes); err != nil {
		return Decision{}, err
	}
	if st := obj.Get(keyStatus); st != nil {
		n, ok := st.Value.(ast.Number)
		if !ok {
			return Decision{}, fmt.Errorf("%w: status is %s, want an integer", ErrInvalidDecision, ast.ValueName(st.Value))
		}
		v, ok := n.Int()
		if !ok || v < 100 || v > 599 {
			return Decision{}, fmt.Errorf("%w: status %s is not an HTTP status (100-599)", ErrInvalidDecision, truncate(string(n), 32))
		}
		d.Status = v
	}
	if h := obj.Get(keyHeaders); h != nil {
		if d.Headers, err = decodeHeaders(h); err != nil {
			return Decision{}, err
		}
	}
	return d, nil
}

func optString(obj ast.Object, key *ast.Term, limit int) (string, error) {
	t := obj.Get(key)
	if t == nil {
		return "", nil
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%w: %s is %s, want a string", ErrInvalidDecision, key.Value.(ast.String), ast.ValueName(t.Value))
	}
	if len(s) > limit {
		return "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidDecision, key.Value.(ast.String), limit)
	}
	return string(s), nil
}

func decodeHeaders(t *ast.Term) (map[string]string, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("%w: headers is %s, want an object", ErrInvalidDecision, ast.ValueName(t.Value))
	}
	if obj.Len() == 0 {
		return nil, nil
	}
	if obj.Len() > maxDecisionHeaders {
		return nil, fmt.Errorf("%w: %d headers, at most %d", ErrInvalidDecision, obj.Len(), maxDecisionHeaders)
	}
	out := make(map[string]string, obj.Len())
	err := obj.Iter(func(k, v *ast.Term) error {
		name, ok := k.Value.(ast.String)
		if !ok || !validHeaderName(string(name)) {
			return fmt.Errorf("%w: %s is not a valid header name", ErrInvalidDecision, truncate(k.String(), 64))
		}
		val, ok := v.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%w: header %s is %s, want a string", ErrInvalidDecision, name, ast.ValueName(v.Value))
		}
		if !validHeaderValue(string(val)) {
			return fmt.Errorf("%w: header %s has a control character or is longer than %d bytes", ErrInvalidDecision, name, maxHeaderValueBytes)
		}
		out[strings.ToLower(string(name))] = string(val)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validHeaderName accepts RFC 9110 tokens.
func validHeaderName(s string) bool {
	if s == "" || len(s) > maxHeaderNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses CR, LF, NUL and other controls (header injection).
func validHeaderValue(s string) bool {
	if len(s) > maxHeaderValueBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
