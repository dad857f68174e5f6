package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// hotQuery evaluates the decision query with topdown directly: the rego
// package's per-call setup (evaluation context, option closures, result set,
// conversion of the result) is measurable at this query's size, and Eval
// needs none of it.
type hotQuery struct {
	body     ast.Body
	result   ast.Var
	compiler *ast.Compiler
	store    storage.Store
}

// resultVar holds the query's value; the name cannot clash with a user var.
const resultVar = ast.Var("__switchyard_result__")

func newHotQuery(c *ast.Compiler, store storage.Store, query string) (hotQuery, error) {
	parsed, err := ast.ParseBody(query)
	if err != nil {
		return hotQuery{}, err
	}
	if len(parsed) != 1 {
		return hotQuery{}, errors.New("the query must be a single expression (a data reference)")
	}
	term, ok := parsed[0].Terms.(*ast.Term)
	if !ok {
		return hotQuery{}, errors.New("the query must be a reference such as data.switchyard.decision")
	}
	body := ast.NewBody(ast.Equality.Expr(ast.NewTerm(resultVar), term))
	compiled, err := c.QueryCompiler().WithUnsafeBuiltins(unsafeBuiltins).Compile(body)
	if err != nil {
		return hotQuery{}, err
	}
	if !compiled.Vars(ast.VarVisitorParams{}).Contains(resultVar) {
		return hotQuery{}, fmt.Errorf("internal: compiled query %v lost its result variable", compiled)
	}
	return hotQuery{body: compiled, result: resultVar, compiler: c, store: store}, nil
}

// eval returns the query's value, or nil when it is undefined.
func (h *hotQuery) eval(ctx context.Context, input ast.Value, cancel topdown.Cancel, vc topdown.VirtualCache) (*ast.Term, error) {
	txn, err := h.store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer h.store.Abort(ctx, txn)
	var out *ast.Term
	err = topdown.NewQuery(h.body).
		WithCompiler(h.compiler).
		WithStore(h.store).
		WithTransaction(txn).
		WithInput(ast.NewTerm(input)).
		WithCancel(cancel).
		WithMetrics(noMetrics).
		WithVirtualCache(vc).
		Iter(ctx, func(qr topdown.QueryResult) error {
			if out != nil {
				return errors.New("the query produced more than one result")
			}
			out = qr[h.result]
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}
