package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestInvalidConfigsGolden loads every file under testdata/invalid and
// compares the error with its .golden file: each problem must name the file,
// the line and the key.
func TestInvalidConfigsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("Load succeeded on an invalid config")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestUnknownKeyNamesLine(t *testing.T) {
	_, err := Load("testdata/invalid/unknown-key.yaml")
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	p := ce.Problems[0]
	if p.Line != 5 || !strings.Contains(p.Msg, `"colour"`) {
		t.Errorf("problem = %+v, want line 5 naming colour", p)
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(cfg, DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.GRPCMaxMessageBytes; got != 32<<20 {
		t.Errorf("grpc max message = %d, want 32 MiB", got)
	}
	if len(s.OnPremTargets()) == 0 {
		t.Error("the default portfolio must have an on-prem target (PII goes there)")
	}
	if b := s.Baseline(); b == nil || b.Name != "large-b" {
		t.Errorf("baseline = %v, want large-b", b)
	}
	tests := []struct {
		model, target string
		ok            bool
	}{
		{"auto", AutoModel, true},
		{"", AutoModel, true},
		{"switchyard", AutoModel, true},
		{"fast", "fast", true},
		{"cascade", "cascade", true},
		{"small-a", "fast", true},     // leads fast and cascade: the plain target wins
		{"gpt-4o-mini", "fast", true}, // upstream ids resolve like model names
		{"large-b", "reasoning", true},
		{"gpt-4.1", "guarded", true}, // leads guarded (plain) before reasoning by name
		{"llama-3.1-8b-instruct", "onprem", true},
		{"gpt-5-ultra", "", false},
	}
	for _, tt := range tests {
		got, ok := s.ResolveModel(tt.model)
		if ok != tt.ok || got != tt.target {
			t.Errorf("ResolveModel(%q) = %q, %v; want %q, %v", tt.model, got, ok, tt.target, tt.ok)
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	cfg, err := Parse([]byte(`version: 1
providers:
  p1: {address: "api.example:443", auth: {secret_env: SWITCHYARD_TEST_KEY}}
models:
  - {name: m1, tier: fast, provider: p1}
  - {name: m2, tier: reasoning, provider: p1, price: {input_per_mtok: 1, output_per_mtok: 2}}
targets:
  t1: {models: [m1, m2], slo: 2s}
routing:
  default_target: t1
`), "mem.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.GRPCAddr != ":50051" || cfg.Server.FailureMode != FailClosed || cfg.Server.StreamWorkers != DefaultStreamWorkers || cfg.Policy.EvalTimeout.D() != 50*time.Millisecond {
		t.Errorf("server/policy defaults not applied: %+v %+v", cfg.Server, cfg.Policy)
	}
	if got := cfg.Targets["t1"].Timeout.D(); got != 5*time.Second {
		t.Errorf("target timeout = %v, want 2 × slo + 1s = 5s", got)
	}
	if cfg.Models[0].UpstreamModel != "m1" {
		t.Errorf("upstream_model default = %q, want the model name", cfg.Models[0].UpstreamModel)
	}
	if a := cfg.Providers["p1"].Auth; a.Header != "authorization" || a.Prefix != "Bearer " {
		t.Errorf("auth defaults = %+v", a)
	}
	if cfg.Accounting.BaselineModel != "m2" {
		t.Errorf("baseline = %q, want the most expensive reasoning model m2", cfg.Accounting.BaselineModel)
	}
}

func TestSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("sk-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHYARD_TEST_KEY", "sk-env-secret")
	cfg, err := Parse([]byte(`version: 1
providers:
  a: {address: "a.example:443", auth: {secret_env: SWITCHYARD_TEST_KEY}}
  b: {address: "b.example:443", auth: {secret_file: `+keyFile+`}}
models:
  - {name: m1, tier: fast, provider: a}
  - {name: m2, tier: fast, provider: b}
targets:
  t1: {models: [m1, m2]}
routing:
  default_target: t1
`), "mem.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(cfg, "mem.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Secret("a") != "sk-env-secret" || s.Secret("b") != "sk-file-secret" {
		t.Errorf("secrets not loaded")
	}
	cfg.Providers["b"] = Provider{Address: "b.example:443", Auth: Auth{SecretFile: filepath.Join(dir, "missing")}}
	_, err = Compile(cfg, "mem.yaml")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing secret file: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sk-") {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestFingerprintChanges(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	pol := filepath.Join(dir, "pol")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(f, "a")
	fp0 := Fingerprint([]string{f}, []string{pol})
	write(filepath.Join(pol, "x.rego"), "package x")
	fp1 := Fingerprint([]string{f}, []string{pol})
	write(f, "b")
	fp2 := Fingerprint([]string{f}, []string{pol})
	if fp0 == fp1 || fp1 == fp2 || fp0 == fp2 {
		t.Errorf("fingerprints do not change: %s %s %s", fp0, fp1, fp2)
	}
	if Fingerprint([]string{f}, []string{pol}) != fp2 {
		t.Error("fingerprint is not stable")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	for _, p := range []string{"testdata/invalid/many-problems.yaml", "testdata/invalid/syntax.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			return
		}
		if _, err := Compile(cfg, "fuzz.yaml"); err != nil && strings.Contains(err.Error(), "panic") {
			t.Fatal(err)
		}
	})
}

// TestCacheSizes: -1 turns a cache off, 0 (or leaving the key out) is the
// default size.
func TestCacheSizes(t *testing.T) {
	for _, tc := range []struct {
		value          string
		intent, msgs   int
		messagesAbsent bool
	}{
		{"-1", -1, -1, false},
		{"0", DefaultCacheSize, DefaultMessageCacheSize, false},
		{"123", 123, 123, false},
		{"", DefaultCacheSize, DefaultMessageCacheSize, true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			y := string(DefaultYAML())
			if tc.messagesAbsent {
				y = strings.Replace(y, "  message_cache_size: 16384", "", 1)
				y = strings.Replace(y, "  cache_size: 65536", "", 1)
			} else {
				y = strings.Replace(y, "message_cache_size: 16384", "message_cache_size: "+tc.value, 1)
				y = strings.Replace(y, "  cache_size: 65536", "  cache_size: "+tc.value, 1)
			}
			cfg, err := Parse([]byte(y), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Classifier.CacheSize != tc.intent || cfg.Signals.MessageCacheSize != tc.msgs {
				t.Errorf("cache_size %d, message_cache_size %d; want %d, %d",
					cfg.Classifier.CacheSize, cfg.Signals.MessageCacheSize, tc.intent, tc.msgs)
			}
		})
	}
}
