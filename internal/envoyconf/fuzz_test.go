package envoyconf

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSketchValidates: the hand-written sketch from the design docs passes
// the same checks as generated output (it has the same shape).
func TestSketchValidates(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "envoy-sketch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse: a bootstrap file is outside input (the CLI validates files
// operators edit); decoding and validating it must never panic.
func FuzzParse(f *testing.F) {
	// The sketch covers every kind of typed_config; the 30 KB generated
	// files add no coverage and make minimization slow.
	if data, err := os.ReadFile(filepath.Join("testdata", "envoy-sketch.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("static_resources: {clusters: [{name: a, type: LOGICAL_DNS, load_assignment: {cluster_name: a}}]}"))
	f.Add([]byte(`{"static_resources":{"listeners":[{"filter_chains":[{"filters":[{"name":"x","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"}}]}]}]}}`))
	f.Add([]byte("admin: [1, 2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err == nil && b == nil {
			t.Fatal("nil bootstrap without error")
		}
	})
}

// FuzzValidateIstio: rendered Istio YAML may be edited by hand before it is
// checked; the checker must never panic.
func FuzzValidateIstio(f *testing.F) {
	// A one-target portfolio keeps the seed small; it has every kind of patch.
	small, err := Istio(snapFrom(f, singleModelYAML), IstioOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add([]byte("kind: EnvoyFilter\nmetadata: {name: x}\nspec: {configPatches: [{applyTo: CLUSTER, match: {context: GATEWAY}, patch: {operation: ADD, value: {name: c}}}]}"))
	f.Add([]byte("kind: EnvoyFilter\nmetadata: {name: x}\nspec: {configPatches: [1, null, {patch: []}]}"))
	f.Add([]byte("---\n- a\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = ValidateIstio(data)
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(envoyDir, "envoy.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
