package policy

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions tune RunTestsWith.
type TestOptions struct {
	Verbose bool
	// Run keeps only tests whose name matches this regular expression
	// (like `opa test --run`).
	Run string
	// Config, when non-nil, is mounted at data.switchyard.config (e.g. the
	// policy.data of a config file); tests can always override it with
	// `with data.switchyard.config as {...}`.
	Config map[string]any
}

// RunTests runs the *_test.rego tests under dirs the way `opa test` does
// and writes the same report to w: failing (and, verbose, all) tests with
// their file:line, then "PASS: n/m" and "FAIL: n/m" / "ERROR: n/m" lines.
//
// Sources: with fsys set, dirs are paths inside fsys (none: its root);
// without, dirs are directories on disk, and no dirs means the shipped
// policies. Policies are compiled with the same restrictions as in
// production (no network built-ins); print() output is shown for failing
// tests. A test that errors counts as failed; todo_ tests are skipped.
// err reports a load or compile problem (then no test ran).
func RunTests(ctx context.Context, dirs []string, fsys fs.FS, w io.Writer, verbose bool) (passed, failed int, err error) {
	return RunTestsWith(ctx, dirs, fsys, w, TestOptions{Verbose: verbose})
}

// RunTestsWith is RunTests with more options.
func RunTestsWith(ctx context.Context, dirs []string, fsys fs.FS, w io.Writer, opts TestOptions) (passed, failed int, err error) {
	srcs, err := sourcesFor(dirs, fsys)
	if err != nil {
		return 0, 0, err
	}
	set, err := loadFiles(srcs, true)
	if err != nil {
		return 0, 0, err
	}
	if opts.Config != nil {
		cfg, err := normalizeData(opts.Config)
		if err != nil {
			return 0, 0, fmt.Errorf("policy.data: %w", err)
		}
		if err := mountConfig(set.data, cfg, nil); err != nil {
			return 0, 0, err
		}
	}
	store, err := newStore(set.data)
	if err != nil {
		return 0, 0, err
	}
	// The runner adds its own stages and compiles; it must get a fresh
	// compiler with our capabilities and print() on.
	runner := tester.NewRunner().
		SetCompiler(newCompiler(true)).
		SetStore(store).
		SetModules(set.modules).
		CapturePrintOutput(true).
		EnableTracing(opts.Verbose).
		Filter(opts.Run)
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return 0, 0, err
	}
	defer store.Abort(ctx, txn)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, &CompileError{Problems: problemsOf(err)}
	}

	// Results arrive in completion order; sort them so reports diff cleanly.
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Location != nil && b.Location != nil {
			if a.Location.File != b.Location.File {
				return a.Location.File < b.Location.File
			}
			if a.Location.Row != b.Location.Row {
				return a.Location.Row < b.Location.Row
			}
		}
		return a.Package+"."+a.Name < b.Package+"."+b.Name
	})
	for _, r := range results {
		p, f := countResult(r)
		passed += p
		failed += f
	}
	sorted := make(chan *tester.Result, len(results))
	for _, r := range results {
		sorted <- r
	}
	close(sorted)
	rep := tester.PrettyReporter{Output: w, Verbose: opts.Verbose, FailureLine: true}
	if err := rep.Report(sorted); err != nil {
		return passed, failed, fmt.Errorf("report: %w", err)
	}
	return passed, failed, ctx.Err()
}

// countResult counts like tester.PrettyReporter: leaves of sub-results for
// test-case tests, errors as failures, skipped tests not at all.
func countResult(r *tester.Result) (passed, failed int) {
	switch {
	case r.Skip:
		return 0, 0
	case r.Error != nil:
		return 0, 1
	case len(r.SubResults) > 0:
		for _, sr := range r.SubResults.Iter {
			if len(sr.SubResults) > 0 {
				continue
			}
			if sr.Fail {
				failed++
			} else {
				passed++
			}
		}
		return passed, failed
	case r.Fail:
		return 0, 1
	}
	return 1, 0
}
