package policy

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// maxExplainValue bounds the value printed after a fired rule.
const maxExplainValue = 160

// firedRules reduces a trace to the rules whose body succeeded (Exit events
// on a rule), first occurrence only: "file:line: data.pkg.rule => value".
// Else branches are rules of their own, so the line shows which branch won.
// Values come from vc (the evaluation's virtual-document cache) when the
// rule is a constant, complete or partial document; functions show "(...)".
func firedRules(events []*topdown.Event, vc topdown.VirtualCache) []string {
	seen := map[*ast.Rule]bool{}
	var out []string
	for _, ev := range events {
		if ev == nil || ev.Op != topdown.ExitOp {
			continue
		}
		rule, ok := ev.Node.(*ast.Rule)
		if !ok || seen[rule] {
			continue
		}
		seen[rule] = true
		out = append(out, ruleLine(rule, ev, vc))
	}
	return out
}

func ruleLine(rule *ast.Rule, ev *topdown.Event, vc topdown.VirtualCache) string {
	var b strings.Builder
	if loc := rule.Location; loc != nil {
		fmt.Fprintf(&b, "%s:%d: ", loc.File, loc.Row)
	}
	b.WriteString(rulePath(rule))
	if len(rule.Head.Args) > 0 {
		b.WriteString("(...)")
		return b.String()
	}
	var v string
	if rule.Module != nil && vc != nil {
		if ref := rule.Ref().GroundPrefix(); len(ref) > 0 {
			if t, _ := vc.Get(ref); t != nil {
				v = clip(t.String())
			}
		}
	}
	if v == "" && rule.Head.Value != nil {
		v = plug(rule.Head.Value, ev)
	}
	if v != "" {
		b.WriteString(" => ")
		b.WriteString(v)
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > maxExplainValue {
		return s[:maxExplainValue] + "..."
	}
	return s
}

func rulePath(rule *ast.Rule) string {
	if rule.Module == nil || rule.Module.Package == nil {
		return rule.Head.Ref().String()
	}
	return rule.Ref().String()
}

// plug renders a head term with the body's bindings; "" when it is not ground.
func plug(t *ast.Term, ev *topdown.Event) string {
	v := t.Value
	if ev.Locals != nil {
		x, err := ast.TransformVars(t.Copy(), func(x ast.Var) (ast.Value, error) {
			if b := ev.Locals.Get(x); b != nil {
				return b, nil
			}
			return x, nil
		})
		if tv, ok := x.(*ast.Term); ok && err == nil {
			v = tv.Value
		}
	}
	if !v.IsGround() {
		return ""
	}
	return clip(v.String())
}
