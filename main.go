// Command switchyard is an Envoy ext_proc server that routes OpenAI-compatible
// LLM traffic across models. All logic lives in internal/cli.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard-llm/switchyard/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var exit *cli.ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &exit):
		fmt.Fprintln(os.Stderr, "switchyard:", exit.Err)
		os.Exit(exit.Code)
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}
