package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-llm/switchyard/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden decision.json files from the current policy")

// goldenDir holds one directory per case (see its README.md).
const goldenDir = "../../policies/testdata"

// TestGoldenDecisions runs every case under policies/testdata through Eval
// (the request path, with the precomputed rules) and through Explain (plain
// OPA evaluation, no precomputation): both must return the expected
// decision.
func TestGoldenDecisions(t *testing.T) {
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(goldenDir, ent.Name())
		t.Run(ent.Name(), func(t *testing.T) {
			e := goldenEngine(t, dir)
			var in Input
			readJSON(t, filepath.Join(dir, "input.json"), &in, true)
			got, err := e.Eval(context.Background(), &in)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			explained, lines, err := e.Explain(context.Background(), &in)
			if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			if !reflect.DeepEqual(got, explained) {
				t.Errorf("Eval and Explain disagree:\n eval    %+v\n explain %+v", got, explained)
			}
			if len(lines) == 0 {
				t.Error("Explain returned no fired rules")
			}
			wantPath := filepath.Join(dir, "decision.json")
			if *update {
				writeJSON(t, wantPath, got)
				return
			}
			var want Decision
			readJSON(t, wantPath, &want, true)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decision mismatch\n got  %s\n want %s", mustJSON(got), mustJSON(want))
			}
		})
	}
	if n < 12 {
		t.Fatalf("only %d golden cases in %s", n, goldenDir)
	}
}

// goldenEngine builds the shipped policy over the case's config.
func goldenEngine(t *testing.T, dir string) *Engine {
	t.Helper()
	cfg, err := config.Parse(config.DefaultYAML(), config.DefaultName)
	if b, rerr := os.ReadFile(filepath.Join(dir, "config.yaml")); rerr == nil {
		cfg, err = config.Parse(b, filepath.Join(dir, "config.yaml"))
	} else if !errors.Is(rerr, fs.ErrNotExist) {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Generous: this test is about decisions, not speed, and CI machines
	// can be busy.
	cfg.Policy.EvalTimeout = config.Duration(10 * time.Second)
	if _, err := os.Stat(filepath.Join(dir, "data.json")); err == nil {
		var data map[string]any
		readJSON(t, filepath.Join(dir, "data.json"), &data, false)
		cfg.Policy.Data = data
	}
	snap, err := config.Compile(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), snap, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readJSON(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
