// Package cli implements the switchyard command: serve, validate, version
// and the operator tools. Everything behind main() lives here so it can be
// tested with plain arguments and buffers.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X ...cli.version=v1.2.3".
var version = ""

// ErrUsage marks a usage error (exit status 2).
var ErrUsage = errors.New("usage error")

// ExitError carries a specific exit status for a command that ran but failed
// (a failing policy test, an invalid config).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":        {"run the ext_proc server (embedded defaults without --config)", runServe},
		"validate":     {"check a config file (and its policies) and report every problem with file:line", runValidate},
		"explain":      {"show the signals, policy input, proposal, decision and fired rules for one request body", runExplain},
		"replay":       {"route a JSONL traffic log offline: where each request goes and what it would cost", runReplay},
		"envoy-config": {"generate the Envoy bootstrap (or --istio manifests) from a config, validated with go-control-plane", runEnvoyConfig},
		"policy test":  {"run Rego unit tests like `opa test` (the shipped policies without DIR)", runPolicyTest},
		"version":      {"print the version", runVersion},
	}
}

// Main runs the switchyard command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	name, rest := args[0], args[1:]
	if name == "policy" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = "policy "+rest[0], rest[1:]
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "switchyard: unknown command %q\n\n", name)
		usage(stderr, cmds)
		return ErrUsage
	}
	return cmd.run(ctx, rest, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Switchyard routes OpenAI-compatible LLM traffic inside Envoy (ext_proc).")
	fmt.Fprintln(w, "\nUsage: switchyard <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'switchyard <command> --help' for a command's flags.")
}

// newFlags returns a FlagSet that prints its usage to stderr and returns
// errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: switchyard %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; --help prints usage and returns flag.ErrHelp,
// which Main's caller treats as success.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

// Version returns the build version.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = strings.TrimSuffix(v, "(devel)") + s.Value[:12]
			}
		}
		if v != "" {
			return v
		}
	}
	return "dev"
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "switchyard %s\n", Version())
	return nil
}
