package cli

import (
	"context"

	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// runValidate loads a config exactly as serve would — decoding, validation,
// secrets, classifier training and policy compilation — and reports every
// problem. Exit status 1 when invalid.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "validate [--config] CONFIG", stderr)
	path := fs.String("config", "", "config file to check (or give it as the argument)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 1 && *path == "":
		*path = fs.Arg(0)
	case fs.NArg() > 1 || (fs.NArg() == 1 && *path != ""):
		return fmt.Errorf("%w: validate takes one config file", ErrUsage)
	}
	rt, err := route.Load(ctx, *path, zap.NewNop(), telemetry.NewMetrics())
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	defer rt.Close()
	snap := rt.Snapshot()
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d models, %d targets, policy revision %s)\n",
		snap.Source, len(snap.Config.Providers), len(snap.Config.Models), len(snap.TargetNames), rt.PolicyRevision())
	return nil
}
