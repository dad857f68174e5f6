// Command fakeprovider serves the scriptable fake OpenAI-compatible provider
// of package fakeprovider on a real port, for the docker-compose demo in
// envoy/ (one container answers as every provider through network aliases).
// It answers /v1/chat/completions, /v1/completions and /v1/embeddings,
// streaming (SSE, with a usage chunk when stream_options.include_usage is
// set) included. It accepts any API key and never logs request headers.
//
//	go run ./test/fakeprovider/cmd/fakeprovider -addr :8080
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(2)
	}
}

// run serves until ctx ends (SIGINT/SIGTERM in main). ready, when not nil,
// receives the bound address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8080", "listen address")
	name := fs.String("name", "fakeprovider", "server name, used in the default answer")
	content := fs.String("content", "", "answer text (default \"Hello from <name>.\")")
	latency := fs.Duration("latency", 0, "delay before every response")
	chunkDelay := fs.Duration("chunk-delay", 20*time.Millisecond, "delay between streamed (SSE) chunks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	srv := fakeprovider.New(*name, fakeprovider.Script{
		Default: []fakeprovider.Behavior{{Content: *content, Latency: *latency, ChunkDelay: *chunkDelay}},
	})
	if err := srv.Listen(*addr); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "fakeprovider %s listening on %s\n", *name, srv.Addr())
	if ready != nil {
		ready <- srv.Addr()
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "fakeprovider stopping")
	return nil
}
