package envoyconf

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-llm/switchyard/internal/config"
)

var update = flag.Bool("update", false, "rewrite the generated files under envoy/ (same as `make envoy-config`)")

// envoyDir is the repository's envoy/ directory.
const envoyDir = "../../envoy"

// Compose network names: the fake provider answers for every provider under
// "<provider>.fake" (network aliases in envoy/docker-compose.yaml).
const (
	composeSwitchyardAddr = "switchyard:50051"
	composeProviderSuffix = ".fake"
	composeProviderPort   = "8080"
)

// TestGeneratedFiles keeps the checked-in generated files equal to what the
// generator produces from the embedded default config.
func TestGeneratedFiles(t *testing.T) {
	snap := defaultSnap(t)
	composeCfg, err := composeConfig(config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(composeCfg, "compose-config.yaml")
	if err != nil {
		t.Fatalf("generated compose config is invalid: %v", err)
	}
	composeSnap, err := config.Compile(cfg, "compose-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path string
		gen  func() ([]byte, error)
	}{
		{"envoy.yaml", func() ([]byte, error) { return Generate(snap, "yaml") }},
		{"istio/switchyard.yaml", func() ([]byte, error) { return GenerateIstio(snap, "switchyard") }},
		{"compose-config.yaml", func() ([]byte, error) { return composeCfg, nil }},
		{"envoy-compose.yaml", func() ([]byte, error) { return Generate(composeSnap, "yaml") }},
		{"k8s/configmap.yaml", func() ([]byte, error) { return configMap(config.DefaultYAML()) }},
	}
	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			want, err := f.gen()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(envoyDir, f.path)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v\nrun `make envoy-config` (go test ./internal/envoyconf -run . -update) to generate it", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("envoy/%s is stale: it differs from the generator's output at line %d.\n"+
					"Run `make envoy-config` (go test ./internal/envoyconf -run . -update) and commit the result.",
					f.path, firstDiffLine(got, want))
			}
		})
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// composeConfig rewrites a Switchyard config for envoy/docker-compose.yaml:
// every provider points at the fake provider (plaintext, one network alias
// per provider) and Envoy dials Switchyard by its service name. It edits the
// YAML tree so the file keeps its comments.
func composeConfig(src []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config is not a mapping")
	}
	top := root.Content[0]
	providers := mapValue(top, "providers")
	if providers == nil || providers.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config has no providers mapping")
	}
	for i := 0; i+1 < len(providers.Content); i += 2 {
		name, p := providers.Content[i].Value, providers.Content[i+1]
		addr := setScalar(p, "address", name+composeProviderSuffix+":"+composeProviderPort, "!!str")
		addr.LineComment = "# the fake provider (docker-compose network alias)"
		setScalar(p, "tls", "false", "!!bool")
		setScalar(p, "host", "", "!!str")
	}
	envoy := mapValue(top, "envoy")
	if envoy == nil {
		top.Content = append(top.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "envoy", HeadComment: "# envoy-config settings for the compose network"},
			&yaml.Node{Kind: yaml.MappingNode})
		envoy = top.Content[len(top.Content)-1]
	}
	setScalar(envoy, "switchyard_addr", composeSwitchyardAddr, "!!str")
	var buf bytes.Buffer
	buf.WriteString("# generated from the embedded default config for envoy/docker-compose.yaml; do not edit\n")
	buf.WriteString("# (regenerate with `make envoy-config`). Providers point at the fake provider.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets key to value in mapping m (appending it when absent);
// an empty value removes the key.
func setScalar(m *yaml.Node, key, value, tag string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if value == "" {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				return nil
			}
			n := m.Content[i+1]
			n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, tag, value, 0
			return n
		}
	}
	if value == "" {
		return nil
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, n)
	return n
}

// configMap wraps a Switchyard config file in the ConfigMap the Deployment
// in envoy/k8s/ mounts.
func configMap(cfg []byte) ([]byte, error) {
	s := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	m := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	doc := m(
		s("apiVersion"), s("v1"),
		s("kind"), s("ConfigMap"),
		s("metadata"), m(
			s("name"), s("switchyard-config"),
			s("namespace"), s("switchyard"),
			s("labels"), m(s("app.kubernetes.io/name"), s("switchyard")),
		),
		s("data"), m(
			s("config.yaml"), &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: string(cfg)},
		),
	)
	var buf bytes.Buffer
	buf.WriteString("# generated from the embedded default config; do not edit (regenerate with `make envoy-config`).\n")
	buf.WriteString("# Replace data.config.yaml with your own config; Switchyard re-reads it on change.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
