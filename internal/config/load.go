package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is the file name reported for the embedded default config.
const DefaultName = "<embedded default.yaml>"

// DefaultYAML returns the embedded default configuration file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Problem is one thing wrong with a config file, located by key path and line.
type Problem struct {
	File string
	Line int
	Path string // dotted key path, e.g. "models[2].provider"
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Error is returned by Parse and Load when the config is invalid. It lists
// every problem found, each with its file and line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid config:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrInvalid matches any *Error with errors.Is.
var ErrInvalid = errors.New("invalid config")

// Is reports ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Load reads, decodes, defaults and validates the file at path. An empty path
// loads the embedded default.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(defaultYAML, DefaultName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes data strictly (unknown keys are errors), applies defaults and
// validates. name is used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []Problem{yamlSyntaxProblem(name, err)}}
	}
	if root.Kind == 0 {
		return nil, &Error{Problems: []Problem{{File: name, Msg: "config file is empty"}}}
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, &Error{Problems: decodeProblems(name, err, &root)}
	}
	cfg.applyDefaults()
	locate := func(path string) int { return lineOf(&root, path) }
	if probs := cfg.validate(); len(probs) > 0 {
		for i := range probs {
			probs[i].File = name
			probs[i].Line = locate(probs[i].Path)
		}
		return nil, &Error{Problems: probs}
	}
	return &cfg, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlSyntaxProblem(name string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	}
	return Problem{File: name, Line: line, Msg: "YAML syntax: " + msg}
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type config\.(\w+)$`)
	typeErrRE      = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// sectionNames maps Go type names to the YAML section a user knows.
var sectionNames = map[string]string{
	"Config": "the top level", "Server": "server", "Limits": "server.limits",
	"Content": "server.content", "ServerTLS": "server.tls", "Provider": "a provider",
	"Auth": "a provider's auth", "Model": "a model", "Price": "a model's price",
	"Target": "a target", "Judge": "a target's judge", "Routing": "routing",
	"ComplexityBand": "a routing.complexity band", "KeywordRule": "a routing.keywords rule",
	"Classifier": "classifier", "LLMClassifier": "classifier.llm", "Breaker": "classifier.llm.breaker",
	"PII": "pii", "Policy": "policy", "Accounting": "accounting", "Envoy": "envoy",
	"Outlier": "envoy.outlier",
}

func decodeProblems(name string, err error, root *yaml.Node) []Problem {
	var te *yaml.TypeError
	var ve *valueError
	switch {
	case errors.As(err, &ve):
		return []Problem{{File: name, Line: ve.line, Msg: ve.msg}}
	case !errors.As(err, &te):
		return []Problem{yamlSyntaxProblem(name, err)}
	}
	probs := make([]Problem, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			sec := sectionNames[m[3]]
			if sec == "" {
				sec = m[3]
			}
			probs = append(probs, Problem{File: name, Line: line,
				Msg: fmt.Sprintf("unknown key %q in %s (check the spelling; see README \"Configuration\")", m[2], sec)})
			continue
		}
		if m := typeErrRE.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			probs = append(probs, Problem{File: name, Line: line, Msg: m[2]})
			continue
		}
		probs = append(probs, Problem{File: name, Msg: e})
	}
	return probs
}

// lineOf finds the line of a dotted key path such as "models[2].provider" or
// "targets.fast.models" in the YAML tree; it returns the deepest line found.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range splitPath(path) {
		switch {
		case part.index >= 0:
			if n.Kind != yaml.SequenceNode || part.index >= len(n.Content) {
				return line
			}
			n = n.Content[part.index]
			line = n.Line
		default:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part.key {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		}
	}
	return line
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var parts []pathPart
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		key := seg
		var idx []int
		for {
			open := strings.IndexByte(key, '[')
			if open < 0 || !strings.HasSuffix(key, "]") {
				break
			}
			close := strings.IndexByte(key[open:], ']') + open
			i, err := strconv.Atoi(key[open+1 : close])
			if err != nil {
				break
			}
			idx = append(idx, i)
			rest := key[close+1:]
			key = key[:open] + rest
		}
		if key != "" {
			parts = append(parts, pathPart{key: key, index: -1})
		}
		for _, i := range idx {
			parts = append(parts, pathPart{index: i})
		}
	}
	return parts
}

// UnmarshalYAML decodes Go duration strings ("150ms", "5s", "1m30s") and
// plain integers (seconds).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &valueError{n.Line, `want a duration such as "150ms" or "5s"`}
	}
	if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &valueError{n.Line, fmt.Sprintf(`%q is not a duration (examples: "150ms", "5s", "1m")`, n.Value)}
	}
	if v < 0 {
		return &valueError{n.Line, fmt.Sprintf("duration %q is negative", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// valueError is a bad scalar value found while decoding, with its line.
type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// sortedKeys returns the keys of m in sorted order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
