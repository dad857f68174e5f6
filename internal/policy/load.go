package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-llm/switchyard/policies"
)

// unsafeBuiltins are refused at compile time: a routing policy runs on every
// request and must not reach the network (http.send, net.lookup_ip_addr) or
// read the process environment, where provider keys live (opa.runtime).
var unsafeBuiltins = map[string]struct{}{
	ast.HTTPSend.Name:        {},
	ast.NetLookupIPAddr.Name: {},
	ast.OPARuntime.Name:      {},
}

// UnsafeBuiltins returns the names of the built-ins policies may not call.
func UnsafeBuiltins() []string {
	out := make([]string, 0, len(unsafeBuiltins))
	for n := range unsafeBuiltins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// maxFileBytes bounds one policy or data file; policies are operator input,
// but a stray multi-gigabyte file in a policy directory should not take the
// process down.
const maxFileBytes = 64 << 20

// source is one directory tree to load: a root inside an fs.FS, and the
// prefix under which its files are named in messages.
type source struct {
	fsys    fs.FS
	root    string
	display string
	osPath  bool // display is an OS directory: join with its separator
}

// sourcesFor picks the policy source: an explicit FS, the configured
// directories, or the embedded shipped policies.
func sourcesFor(dirs []string, fsys fs.FS) ([]source, error) {
	if fsys != nil {
		if len(dirs) == 0 {
			return []source{{fsys: fsys, root: "."}}, nil
		}
		out := make([]source, 0, len(dirs))
		for _, d := range dirs {
			d = path.Clean(filepath.ToSlash(d))
			out = append(out, source{fsys: fsys, root: d, display: d})
		}
		return out, nil
	}
	if len(dirs) == 0 {
		return []source{{fsys: policies.FS, root: ".", display: "policies"}}, nil
	}
	out := make([]source, 0, len(dirs))
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("policy dir: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy dir %s: not a directory", d)
		}
		out = append(out, source{fsys: os.DirFS(d), root: ".", display: filepath.Clean(d), osPath: true})
	}
	return out, nil
}

// fileSet is what was read from the sources.
type fileSet struct {
	modules map[string]*ast.Module // by display name
	data    map[string]any         // merged data documents
	names   []string               // display names of every file read, in load order
	digest  hash.Hash              // sha256 over the non-test files' names and contents
}

// revision hashes every non-test file's name and content and the config's
// policy.data into a short hex id.
func (s *fileSet) revision(cfgData map[string]any) string {
	b, err := json.Marshal(cfgData) // map keys are sorted: stable
	if err != nil {
		b = []byte(fmt.Sprint(cfgData))
	}
	fmt.Fprintf(s.digest, "config:%d:", len(b))
	s.digest.Write(b)
	return hex.EncodeToString(s.digest.Sum(nil))[:12]
}

// skipDir reports directories that are never loaded: hidden ones, "_"-prefixed
// ones and testdata (golden files and fixtures live there), as Go does.
func skipDir(name string) bool {
	return name == "testdata" || (len(name) > 1 && (name[0] == '.' || name[0] == '_'))
}

func isDataFile(name string) bool {
	switch path.Ext(name) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// loadFiles reads every .rego file (with *_test.rego only when tests is
// true) and every .json/.yaml/.yml data file under the sources. A data file
// is mounted like `opa run DIR` does: at the path of its directory relative to
// DIR (DIR/tenants/acme/x.json -> data.tenants.acme); files of one directory
// are merged, and two files setting the same leaf are an error.
func loadFiles(srcs []source, tests bool) (*fileSet, error) {
	set := &fileSet{modules: map[string]*ast.Module{}, data: map[string]any{}, digest: sha256.New()}
	var problems []Problem
	for _, src := range srcs {
		err := fs.WalkDir(src.fsys, src.root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != src.root && skipDir(d.Name()) {
					return fs.SkipDir
				}
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || (!strings.HasSuffix(name, ".rego") && !isDataFile(name)) {
				return nil
			}
			isTest := strings.HasSuffix(name, "_test.rego")
			if isTest && !tests {
				return nil
			}
			rel := relPath(src.root, p)
			display := path.Join(src.display, rel)
			if src.osPath {
				display = filepath.Join(src.display, filepath.FromSlash(rel))
			}
			bs, err := readLimited(src.fsys, p)
			if err != nil {
				return fmt.Errorf("%s: %w", display, err)
			}
			set.names = append(set.names, display)
			if !isTest {
				fmt.Fprintf(set.digest, "%d:%s:%d:", len(display), display, len(bs))
				set.digest.Write(bs)
			}
			if strings.HasSuffix(name, ".rego") {
				m, err := ast.ParseModuleWithOpts(display, string(bs), ast.ParserOptions{
					RegoVersion: ast.RegoV1, ProcessAnnotation: true,
				})
				if err != nil {
					problems = append(problems, problemsOf(err)...)
					return nil
				}
				set.modules[display] = m
				return nil
			}
			doc, err := parseData(name, bs)
			if err != nil {
				problems = append(problems, Problem{File: display, Msg: err.Error()})
				return nil
			}
			if doc == nil {
				return nil // an empty YAML file
			}
			if err := mergeDoc(set.data, dirPath(rel), doc); err != nil {
				problems = append(problems, Problem{File: display, Msg: err.Error()})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read policies: %w", err)
		}
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	if len(set.modules) == 0 {
		where := make([]string, 0, len(srcs))
		for _, s := range srcs {
			where = append(where, cmpOr(s.display, s.root))
		}
		return nil, fmt.Errorf("no .rego policy files found in %s", strings.Join(where, ", "))
	}
	return set, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func relPath(root, p string) string {
	if root == "." {
		return p
	}
	return strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
}

// dirPath is the data path of a file: its directory's segments.
func dirPath(rel string) []string {
	dir := path.Dir(rel)
	if dir == "." || dir == "" {
		return nil
	}
	return strings.Split(dir, "/")
}

func readLimited(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if n > maxFileBytes {
		return nil, fmt.Errorf("larger than %d MiB", maxFileBytes>>20)
	}
	return buf.Bytes(), nil
}

// parseData decodes a JSON or YAML data file, keeping numbers exact.
func parseData(name string, bs []byte) (any, error) {
	bs = bytes.TrimPrefix(bs, []byte("\xef\xbb\xbf"))
	if path.Ext(name) != ".json" {
		if len(bytes.TrimSpace(bs)) == 0 {
			return nil, nil
		}
		j, err := yaml.YAMLToJSON(bs)
		if err != nil {
			return nil, fmt.Errorf("YAML: %w", err)
		}
		bs = j
	}
	var v any
	if err := util.UnmarshalJSON(bs, &v); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	return v, nil
}

// mergeDoc merges doc into root at p. Objects merge key by key; any other
// value may be set once.
func mergeDoc(root map[string]any, p []string, doc any) error {
	if len(p) == 0 {
		obj, ok := doc.(map[string]any)
		if !ok {
			return errors.New("a data file at the root of a policy directory must hold an object")
		}
		return mergeObject(root, obj, "data")
	}
	cur, where := root, "data"
	for i, k := range p {
		where += "." + k
		if i == len(p)-1 {
			break
		}
		next, ok := cur[k]
		if !ok {
			m := map[string]any{}
			cur[k] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is already set by another data file", where)
		}
		cur = m
	}
	last := p[len(p)-1]
	existing, ok := cur[last]
	if !ok {
		cur[last] = doc
		return nil
	}
	a, okA := existing.(map[string]any)
	b, okB := doc.(map[string]any)
	if !okA || !okB {
		return fmt.Errorf("%s is already set by another data file", where)
	}
	return mergeObject(a, b, where)
}

func mergeObject(dst, src map[string]any, where string) error {
	for _, k := range sortedKeys(src) {
		v := src[k]
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		a, okA := old.(map[string]any)
		b, okB := v.(map[string]any)
		if !okA || !okB {
			return fmt.Errorf("%s.%s is already set by another data file", where, k)
		}
		if err := mergeObject(a, b, where+"."+k); err != nil {
			return err
		}
	}
	return nil
}

// mountConfig puts policy.data at data.switchyard.config and the targets at
// data.switchyard.targets. Both paths belong to the config file: a data file
// may not set them.
func mountConfig(data map[string]any, cfg map[string]any, targets map[string]any) error {
	sw, ok := data["switchyard"]
	if !ok {
		sw = map[string]any{}
		data["switchyard"] = sw
	}
	m, ok := sw.(map[string]any)
	if !ok {
		return errors.New("a data file sets data.switchyard, which is reserved for Switchyard")
	}
	for _, k := range []string{"config", "targets"} {
		if _, taken := m[k]; taken {
			return fmt.Errorf("a data file sets data.switchyard.%s, which Switchyard fills from the config file (policy.data, targets)", k)
		}
	}
	m["config"] = cfg
	if targets != nil {
		m["targets"] = targets
	}
	return nil
}

// normalizeData turns YAML-decoded policy.data into JSON-shaped values
// (string keys, no time.Time) that OPA can hold.
func normalizeData(in map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(in))
	for k, v := range in {
		n, err := normalizeValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = n
	}
	return out, nil
}

func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int, int64, uint64, float64, json.Number:
		return x, nil
	case int8, int16, int32, uint, uint8, uint16, uint32, float32:
		return json.Number(fmt.Sprint(x)), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case map[string]any:
		return normalizeData(x)
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("%v: %w", k, err)
			}
			m[fmt.Sprint(k)] = n
		}
		return m, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	}
	// Anything else goes through JSON, as the config loader would render it.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("unsupported value of type %T", v)
	}
	var out any
	if err := util.UnmarshalJSON(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// newStore builds an in-memory store that hands AST values to the evaluator,
// so reading data costs no conversion per evaluation.
func newStore(data map[string]any) (storage.Store, error) {
	v, err := ast.InterfaceToValue(data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("data: not an object")
	}
	return inmem.NewFromASTObject(obj), nil
}

// newCompiler returns a compiler with the unsafe built-ins refused.
func newCompiler(print bool) *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(ast.CapabilitiesForThisVersion()).
		WithUnsafeBuiltins(unsafeBuiltins).
		WithEnablePrintStatements(print).
		WithDefaultRegoVersion(ast.RegoV1)
}

func compileModules(mods map[string]*ast.Module, print bool) (*ast.Compiler, error) {
	c := newCompiler(print)
	if c.Compile(mods); c.Failed() {
		return nil, &CompileError{Problems: problemsOf(c.Errors)}
	}
	return c, nil
}

// Problem is one error in a policy or data file.
type Problem struct {
	File      string
	Line, Col int
	Msg       string
}

func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Msg
	case p.Line == 0:
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	case p.Col == 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
}

// CompileError lists every problem found while parsing and compiling, each
// located by file:line:col, in the order a human fixes them.
type CompileError struct {
	Problems []Problem
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d policy error(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(p.String(), "\n", "\n    "))
	}
	return b.String()
}

// problemsOf turns OPA's errors into Problems, with the offending source line
// and a caret when OPA provides them.
func problemsOf(err error) []Problem {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		var one *ast.Error
		if errors.As(err, &one) {
			errs = ast.Errors{one}
		} else {
			return []Problem{{Msg: err.Error()}}
		}
	}
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		p := Problem{Msg: e.Code + ": " + e.Message}
		if e.Location != nil {
			p.File, p.Line, p.Col = e.Location.File, e.Location.Row, e.Location.Col
		}
		if e.Details != nil {
			if lines := e.Details.Lines(); len(lines) > 0 {
				p.Msg += "\n" + strings.Join(lines, "\n")
			}
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Col < out[j].Col
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
