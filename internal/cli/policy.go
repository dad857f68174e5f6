package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/policies"
)

// runPolicyTest runs Rego unit tests (rules named test_*) the way `opa test`
// does: the shipped policies when no directory is given.
func runPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("policy test", "policy test [-v] [DIR...]", stderr)
	verbose := flags.Bool("v", false, "print every test, not only failures")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	dirs := flags.Args()
	var src fs.FS = policies.FS
	if len(dirs) > 0 {
		src = nil
	}
	passed, failed, err := policy.RunTests(ctx, dirs, src, stdout, *verbose)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	if failed > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d policy tests failed", failed, passed+failed)}
	}
	if passed == 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("no policy tests found in %v", dirs)}
	}
	return nil
}
