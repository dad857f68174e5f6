package policy

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Static rules.
//
// A rule whose value cannot depend on the input (it reads only data, other
// static rules and deterministic built-ins) has the same value in every
// evaluation of one Engine: data and policies are immutable for its life.
// New evaluates such complete rules once and every Eval sees them through a
// virtual-document cache, so settings derived from data.switchyard.config
// (defaults, sets built from lists, on/off switches) cost nothing on the
// request path and policies can stay readable.

// staticNode is a trie over ref terms (data, "pkg", "rule") holding the
// precomputed value of a rule (nil value: the rule is undefined).
type staticNode struct {
	children map[string]*staticNode
	value    *ast.Term
	known    bool
}

func (n *staticNode) lookup(ref ast.Ref) *staticNode {
	if n == nil || len(ref) == 0 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok || n.children == nil {
			return nil
		}
		if n = n.children[string(s)]; n == nil {
			return nil
		}
	}
	if !n.known {
		return nil
	}
	return n
}

func (n *staticNode) insert(ref ast.Ref, v *ast.Term) {
	for _, t := range ref[1:] {
		s := string(t.Value.(ast.String))
		if n.children == nil {
			n.children = map[string]*staticNode{}
		}
		next := n.children[s]
		if next == nil {
			next = &staticNode{}
			n.children[s] = next
		}
		n = next
	}
	n.value, n.known = v, true
}

// staticBudget bounds the one-off evaluation of the static rules in New; a
// rule not computed in time is simply evaluated per request.
const staticBudget = time.Second

// buildStatic finds the complete, argument-free rules that are independent
// of the input and evaluates each once. A rule that errors is left out (its
// error then surfaces per request, as it would without this cache).
func buildStatic(ctx context.Context, c *ast.Compiler, store storage.Store) (*staticNode, int) {
	dynamic := dynamicRules(c)
	root := &staticNode{}
	count := 0
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(ctx, staticBudget)
	defer cancel()
	for _, mod := range c.Modules {
		for _, rule := range mod.Rules {
			full := rule.Ref()
			// Only simple names: a ground ref head (p.q := 1) may share its path
			// with a rule that has a variable in it (p[x] := ...).
			if len(rule.Head.Ref()) != 1 || rule.Head.RuleKind() != ast.SingleValue || len(rule.Head.Args) > 0 {
				continue
			}
			key := full.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			if !allStatic(c, full, dynamic) {
				continue
			}
			rs, err := rego.New(
				rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(full)))),
				rego.Compiler(c),
				rego.Store(store),
				rego.GenerateJSON(rawTerm),
			).Eval(ctx)
			if err != nil {
				continue
			}
			var v *ast.Term
			if len(rs) > 0 && len(rs[0].Expressions) > 0 {
				var ok bool
				if v, ok = rs[0].Expressions[0].Value.(*ast.Term); !ok {
					continue
				}
			}
			root.insert(full, v)
			count++
		}
	}
	return root, count
}

// allStatic reports whether every rule defining ref is static.
func allStatic(c *ast.Compiler, ref ast.Ref, dynamic map[*ast.Rule]bool) bool {
	rules := c.GetRulesExact(ref)
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		if dynamic[r] || r.Head.RuleKind() != ast.SingleValue {
			return false
		}
	}
	return true
}

// dynamicRules marks every rule that may depend on the input: it refers to
// input, uses `with`, calls a non-deterministic built-in, refers to data it
// cannot resolve to rules precisely, or refers to a dynamic rule.
func dynamicRules(c *ast.Compiler) map[*ast.Rule]bool {
	dynamic := map[*ast.Rule]bool{}
	deps := map[*ast.Rule][]*ast.Rule{}
	var all []*ast.Rule
	builtins := map[string]*ast.Builtin{}
	for _, b := range c.Capabilities().Builtins {
		builtins[b.Name] = b
	}
	for _, mod := range c.Modules {
		for _, rule := range mod.Rules {
			all = append(all, rule)
			direct, ds := ruleDeps(c, rule, builtins)
			if direct {
				dynamic[rule] = true
			}
			deps[rule] = ds
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range all {
			if dynamic[r] {
				continue
			}
			for _, d := range deps[r] {
				if dynamic[d] {
					dynamic[r] = true
					changed = true
					break
				}
			}
		}
	}
	return dynamic
}

// ruleDeps returns whether rule depends on the input directly, and the
// rules it refers to.
func ruleDeps(c *ast.Compiler, rule *ast.Rule, builtins map[string]*ast.Builtin) (direct bool, deps []*ast.Rule) {
	vis := ast.NewGenericVisitor(func(x any) bool {
		if direct {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if len(x.With) > 0 {
				direct = true
				return true
			}
			if x.IsCall() {
				if b, ok := builtins[x.Operator().String()]; ok && b.Nondeterministic {
					direct = true
					return true
				}
			}
		case ast.Ref:
			switch {
			case x.HasPrefix(ast.InputRootRef):
				direct = true
			case x.HasPrefix(ast.DefaultRootRef):
				deps = append(deps, c.GetRulesDynamic(x)...)
				if !x.IsGround() {
					// A non-ground ref into data may reach any rule under
					// its ground prefix; GetRulesDynamic covers them.
					deps = append(deps, c.GetRules(x.GroundPrefix())...)
				}
			}
		}
		return false
	})
	vis.Walk(rule)
	return direct, deps
}

// overlayCache serves the static rules and keeps everything else in a
// per-evaluation cache. Inside a `with` (a pushed frame) data or input may be
// replaced, so the static values are not used there.
type overlayCache struct {
	static *staticNode
	inner  topdown.VirtualCache
	depth  int
}

var _ topdown.VirtualCache = (*overlayCache)(nil)

func newOverlayCache(static *staticNode) *overlayCache {
	return &overlayCache{static: static, inner: topdown.NewVirtualCache()}
}

func (o *overlayCache) Push() { o.depth++; o.inner.Push() }

func (o *overlayCache) Pop() { o.depth--; o.inner.Pop() }

func (o *overlayCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if o.depth == 0 {
		if n := o.static.lookup(ref); n != nil {
			return n.value, n.value == nil
		}
	}
	return o.inner.Get(ref)
}

func (o *overlayCache) Put(ref ast.Ref, v *ast.Term) { o.inner.Put(ref, v) }

func (o *overlayCache) Keys() []ast.Ref { return o.inner.Keys() }
