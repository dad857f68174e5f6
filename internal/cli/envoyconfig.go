package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-llm/switchyard/internal/envoyconf"
	"github.com/switchyard-llm/switchyard/internal/route"
)

// runEnvoyConfig prints the Envoy bootstrap (or the Istio and Kubernetes
// manifests) generated from a Switchyard config, validated with
// go-control-plane before it is printed.
func runEnvoyConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("envoy-config", "envoy-config [--config FILE] [--format yaml|json] [--istio [--namespace NS]]", stderr)
	cfgPath := flags.String("config", "", "config file (default: the embedded sample config)")
	format := flags.String("format", "yaml", "bootstrap output format: yaml or json")
	istio := flags.Bool("istio", false, "print Istio EnvoyFilter, ServiceEntry/DestinationRule and Kubernetes manifests instead")
	ns := flags.String("namespace", "switchyard", "Kubernetes namespace for --istio")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: envoy-config takes no arguments", ErrUsage)
	}
	if *format != "yaml" && *format != "json" {
		return fmt.Errorf("%w: --format must be yaml or json", ErrUsage)
	}
	snap, err := route.LoadSnapshot(*cfgPath)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	var out []byte
	if *istio {
		out, err = envoyconf.GenerateIstio(snap, *ns)
	} else {
		out, err = envoyconf.Generate(snap, *format)
	}
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	_, err = stdout.Write(out)
	return err
}
