package envoysim

import (
	"fmt"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// header is one entry of an Envoy header map: lower-case key, raw value.
type header struct{ key, value string }

// headerMap keeps header order and repeated keys the way Envoy's
// HeaderMapImpl does; keys are always lower case.
type headerMap struct{ h []header }

func lower(s string) string { return strings.ToLower(s) }

func (m *headerMap) get(k string) (string, bool) {
	for _, e := range m.h {
		if e.key == k {
			return e.value, true
		}
	}
	return "", false
}

func (m *headerMap) value(k string) string { v, _ := m.get(k); return v }

func (m *headerMap) values(k string) []string {
	var out []string
	for _, e := range m.h {
		if e.key == k {
			out = append(out, e.value)
		}
	}
	return out
}

func (m *headerMap) add(k, v string) { m.h = append(m.h, header{lower(k), v}) }

// set is Envoy's setCopy: the first entry keeps its position, the others go.
func (m *headerMap) set(k, v string) {
	k = lower(k)
	out := m.h[:0]
	done := false
	for _, e := range m.h {
		if e.key == k {
			if done {
				continue
			}
			e.value, done = v, true
		}
		out = append(out, e)
	}
	m.h = out
	if !done {
		m.h = append(m.h, header{k, v})
	}
}

func (m *headerMap) remove(k string) {
	k = lower(k)
	out := m.h[:0]
	for _, e := range m.h {
		if e.key != k {
			out = append(out, e)
		}
	}
	m.h = out
}

// toProto renders the map as Envoy does with send_header_raw_value on:
// values in raw_value, keys lower case, pseudo-headers included (§1.2).
func (m *headerMap) toProto(fr *forwardRules) *corev3.HeaderMap {
	out := &corev3.HeaderMap{}
	for _, e := range m.h {
		if fr != nil && !fr.allowed(e.key) {
			continue
		}
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// Map returns a copy as a plain map (first value wins) for tests and logs.
func (m *headerMap) Map() map[string]string {
	out := make(map[string]string, len(m.h))
	for _, e := range m.h {
		if _, ok := out[e.key]; !ok {
			out[e.key] = e.value
		}
	}
	return out
}

// stringMatcher is the subset of type.matcher.v3.StringMatcher envoysim
// supports.
type stringMatcher struct {
	exact, prefix, suffix, contains *string
	re                              *regexp.Regexp
	ignoreCase                      bool
}

func buildStringMatcher(sm *matcherv3.StringMatcher, path string) (stringMatcher, error) {
	if err := onlyFields(sm, path, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return stringMatcher{}, err
	}
	out := stringMatcher{ignoreCase: sm.GetIgnoreCase()}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		out.exact = &p.Exact
	case *matcherv3.StringMatcher_Prefix:
		out.prefix = &p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		out.suffix = &p.Suffix
	case *matcherv3.StringMatcher_Contains:
		out.contains = &p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := buildRegex(p.SafeRegex, path+".safe_regex")
		if err != nil {
			return out, err
		}
		out.re = re
	default:
		return out, fmt.Errorf("%w: %s: match pattern %T", ErrUnsupported, path, p)
	}
	return out, nil
}

func buildRegex(r *matcherv3.RegexMatcher, path string) (*regexp.Regexp, error) {
	if err := onlyFields(r, path, "regex", "google_re2"); err != nil {
		return nil, err
	}
	// RE2 full-match semantics, as Envoy's safe_regex.
	re, err := regexp.Compile("^(?:" + r.GetRegex() + ")$")
	if err != nil {
		return nil, fmt.Errorf("envoysim: %s: %w", path, err)
	}
	return re, nil
}

func (s *stringMatcher) match(v string) bool {
	cmp := func(a, b string) (string, string) {
		if s.ignoreCase {
			return lower(a), lower(b)
		}
		return a, b
	}
	switch {
	case s.exact != nil:
		a, b := cmp(v, *s.exact)
		return a == b
	case s.prefix != nil:
		a, b := cmp(v, *s.prefix)
		return strings.HasPrefix(a, b)
	case s.suffix != nil:
		a, b := cmp(v, *s.suffix)
		return strings.HasSuffix(a, b)
	case s.contains != nil:
		a, b := cmp(v, *s.contains)
		return strings.Contains(a, b)
	case s.re != nil:
		return s.re.MatchString(v)
	}
	return false
}

type headerMatcher struct {
	name        string
	str         *stringMatcher
	present     bool
	presentWant bool
	invert      bool
}

// match follows Envoy's HeaderUtility::matchHeaders: repeated values are
// joined with "," before matching a string matcher.
func (hm *headerMatcher) match(h *headerMap) bool {
	vals := h.values(hm.name)
	var ok bool
	switch {
	case hm.present:
		ok = (len(vals) > 0) == hm.presentWant
	case len(vals) == 0:
		ok = false
	default:
		ok = hm.str.match(strings.Join(vals, ","))
	}
	return ok != hm.invert
}

// forwardRules is ext_proc's forward_rules (§1.2).
type forwardRules struct {
	allow, disallow []stringMatcher
}

func (f *forwardRules) allowed(k string) bool {
	if len(f.allow) > 0 {
		ok := false
		for i := range f.allow {
			if f.allow[i].match(k) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range f.disallow {
		if f.disallow[i].match(k) {
			return false
		}
	}
	return true
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
