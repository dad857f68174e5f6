package policy

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// testSnapshot compiles the shipped default config, changed by mutate.
func testSnapshot(tb testing.TB, mutate func(*config.Config)) *config.Snapshot {
	tb.Helper()
	cfg, err := config.Parse(config.DefaultYAML(), config.DefaultName)
	if err != nil {
		tb.Fatal(err)
	}
	// Tests assert on decisions, not speed; a busy machine must not turn
	// them into timeouts. Timeout tests set their own limit in mutate.
	cfg.Policy.EvalTimeout = config.Duration(10 * time.Second)
	if mutate != nil {
		mutate(cfg)
	}
	snap, err := config.Compile(cfg, "test")
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// newTestEngine builds an engine over the default config (changed by
// mutate) and fsys (nil: the shipped policies).
func newTestEngine(tb testing.TB, mutate func(*config.Config), fsys fs.FS) *Engine {
	tb.Helper()
	e, err := New(context.Background(), testSnapshot(tb, mutate), Options{FS: fsys})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func mustRef(s string) ast.Ref { return ast.MustParseRef(s) }

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
