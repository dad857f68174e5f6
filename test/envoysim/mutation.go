package envoysim

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// errMutation is an invalid mutation: Envoy answers status_on_error whatever
// failure_mode_allow says (§1.5).
var errMutation = errors.New("invalid mutation")

type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

// mutationChecker is Envoy's mutation_rules Checker (§2, MR).
type mutationChecker struct {
	allowAllRouting, allowEnvoy, disallowSystem, disallowAll, disallowIsError bool
	allowExpr, disallowExpr                                                   *regexp.Regexp
	envoyPrefix                                                               string
}

func buildChecker(r *mutationrulesv3.HeaderMutationRules, path string) (*mutationChecker, error) {
	c := &mutationChecker{envoyPrefix: "x-envoy"}
	if r == nil {
		return c, nil
	}
	if err := onlyFields(r, path, "allow_all_routing", "allow_envoy", "disallow_system", "disallow_all",
		"allow_expression", "disallow_expression", "disallow_is_error"); err != nil {
		return nil, err
	}
	c.allowAllRouting = r.GetAllowAllRouting().GetValue()
	c.allowEnvoy = r.GetAllowEnvoy().GetValue()
	c.disallowSystem = r.GetDisallowSystem().GetValue()
	c.disallowAll = r.GetDisallowAll().GetValue()
	c.disallowIsError = r.GetDisallowIsError().GetValue()
	var err error
	if r.GetAllowExpression() != nil {
		if c.allowExpr, err = buildRegex(r.GetAllowExpression(), path+".allow_expression"); err != nil {
			return nil, err
		}
	}
	if r.GetDisallowExpression() != nil {
		if c.disallowExpr, err = buildRegex(r.GetDisallowExpression(), path+".disallow_expression"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func isSystemHeader(k string) bool { return strings.HasPrefix(k, ":") || k == "host" }

func isRoutingHeader(k string) bool {
	return k == ":authority" || k == "host" || k == ":method" || k == ":scheme"
}

func (c *mutationChecker) allowed(op checkOp, k string) bool {
	if c.disallowExpr != nil && c.disallowExpr.MatchString(k) {
		return false
	}
	if op == opRemove && isSystemHeader(k) {
		return false // never, under any rules (§2)
	}
	if c.allowExpr != nil && c.allowExpr.MatchString(k) {
		return true
	}
	if c.disallowAll {
		return false
	}
	if isSystemHeader(k) {
		if op == opAppend && strings.HasPrefix(k, ":") {
			return false
		}
		if c.disallowSystem {
			return false
		}
		if isRoutingHeader(k) {
			return c.allowAllRouting
		}
		return true
	}
	if strings.HasPrefix(k, c.envoyPrefix) {
		return c.allowEnvoy
	}
	return true
}

func validValue(k, v string) bool {
	switch k {
	case ":status":
		n, err := strconv.Atoi(v)
		return err == nil && n >= 200 && n <= 999
	case ":authority", "host":
		if v == "" || strings.ContainsAny(v, "/?#@ ") {
			return false
		}
		if h, p, err := net.SplitHostPort(v); err == nil {
			_, perr := strconv.ParseUint(p, 10, 16)
			return h != "" && perr == nil
		}
		return true
	case ":scheme":
		return v == "http" || v == "https"
	}
	return true
}

func (c *mutationChecker) check(op checkOp, k, v string) checkResult {
	bad := checkIgnore
	if c.disallowIsError {
		bad = checkFail
	}
	if !c.allowed(op, k) {
		return bad
	}
	if op != opRemove && !validValue(k, v) {
		return bad
	}
	return checkOK
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	s := k
	if s[0] == ':' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool { return !strings.ContainsAny(v, "\r\n\x00") }

// mutationOpts carries the context-dependent exceptions of §2.
type mutationOpts struct {
	replacing         bool // CONTINUE_AND_REPLACE: :method may be set
	dropContentLength bool // content-length set_headers silently ignored
	rejected          func()
}

// applyHeaderMutation applies removals, then sets, reading raw_value only
// (§2 "Value field"): value-only writes an empty header, both set is an
// error. append (BoolValue) defaults to overwrite; append_action is ignored.
func applyHeaderMutation(hm *extprocv3.HeaderMutation, h *headerMap, c *mutationChecker, o mutationOpts) error {
	if hm == nil {
		return nil
	}
	for _, k := range hm.GetRemoveHeaders() {
		if !validHeaderName(lower(k)) {
			return fmt.Errorf("%w: invalid character in remove_headers mutation", errMutation)
		}
		k = lower(k)
		switch c.check(opRemove, k, "") {
		case checkOK:
			h.remove(k)
		case checkIgnore:
			o.rejected()
		case checkFail:
			return fmt.Errorf("%w: header %s not removed due to mutation rules", errMutation, k)
		}
	}
	for _, sh := range hm.GetSetHeaders() {
		hv := sh.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return fmt.Errorf("%w: only one of value or raw_value may be set in header %q", errMutation, hv.GetKey())
		}
		k := lower(hv.GetKey())
		v := string(hv.GetRawValue())
		if !validHeaderName(k) || !validHeaderValue(v) {
			return fmt.Errorf("%w: invalid character in set_headers mutation: %q", errMutation, hv.GetKey())
		}
		if o.dropContentLength && k == "content-length" {
			continue
		}
		appendIt := sh.GetAppend().GetValue()
		op := opSet
		if appendIt {
			if _, exists := h.get(k); exists {
				op = opAppend
			}
		}
		res := c.check(op, k, v)
		if o.replacing && k == ":method" {
			res = checkOK
		}
		switch res {
		case checkOK:
			if appendIt {
				h.add(k, v)
			} else {
				h.set(k, v)
			}
		case checkIgnore:
			o.rejected()
		case checkFail:
			return fmt.Errorf("%w: header %s not set due to mutation rules", errMutation, k)
		}
	}
	return nil
}
