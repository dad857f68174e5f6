package pii

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Differential tests: the scanner must report exactly what the frozen
// pre-optimisation scanner (oracle_test.go) reports, on every input.

var (
	diffNew = func() *Scanner { s, _ := NewScanner(nil); return s }()
	diffOld = func() *orcScanner { s, _ := orcNewScanner(nil); return s }()
)

// oracleScan returns the oracle's findings as Findings.
func oracleScan(text string) []Finding {
	var out []Finding
	for _, f := range diffOld.Scan(text, nil) {
		out = append(out, Finding{Type: f.Type, Count: f.Count})
	}
	return out
}

// sameAsOracle fails t when the scanner and the oracle disagree on text.
func sameAsOracle(t testing.TB, text string) {
	t.Helper()
	got := diffNew.Scan(text, nil)
	want := oracleScan(text)
	if !slices.Equal(got, want) {
		show := text
		if len(show) > 600 {
			show = show[:600] + "..."
		}
		t.Fatalf("differs from oracle on %q (len %d)\n got  %v\n want %v", show, len(text), got, want)
	}
}

// testLiterals returns every string literal (with constant "a"+"b"
// concatenations folded) in the package's hand-written test files, so the
// detector test tables are also differential inputs without copying them.
func testLiterals(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	var fold func(e ast.Expr) (string, bool)
	fold = func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.BasicLit:
			if x.Kind != token.STRING {
				return "", false
			}
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		case *ast.ParenExpr:
			return fold(x.X)
		case *ast.BinaryExpr:
			if x.Op != token.ADD {
				return "", false
			}
			a, ok1 := fold(x.X)
			b, ok2 := fold(x.Y)
			return a + b, ok1 && ok2
		}
		return "", false
	}
	for _, name := range files {
		if name == "oracle_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BinaryExpr, *ast.BasicLit:
				if s, ok := fold(x.(ast.Expr)); ok {
					out = append(out, s)
				}
			}
			return true
		})
	}
	if len(out) < 300 {
		t.Fatalf("only %d literals found in the test files", len(out))
	}
	return out
}

func TestDifferentialTestTables(t *testing.T) {
	lits := testLiterals(t)
	lits = append(lits, fuzzSeeds...)
	lits = append(lits, fuzzCorpus(t)...)
	lits = append(lits, cleanParagraphs...)
	lits = append(lits, piiParagraphs...)
	lits = append(lits, proseSentences...)
	lits = append(lits, chatSentences...)
	lits = append(lits, piiSentences...)
	for _, s := range lits {
		sameAsOracle(t, s)
	}
	// Neighbours change boundaries: every literal glued to the next one
	// with each kind of glue, and the whole set as one document.
	for i := 1; i < len(lits); i++ {
		for _, g := range glue {
			sameAsOracle(t, lits[i-1]+g+lits[i])
		}
	}
	sameAsOracle(t, strings.Join(lits, "\n"))
	sameAsOracle(t, strings.Join(lits, ""))
}

func TestDifferentialGenerated(t *testing.T) {
	docs := 3000
	if testing.Short() {
		docs = 300
	}
	g := newGen(20260101)
	seen := map[string]int{}
	for range docs {
		doc := g.mixedDoc(1 + g.r.IntN(1500))
		sameAsOracle(t, doc)
		for _, f := range oracleScan(doc) {
			seen[f.Type] += f.Count
		}
		// Cheap deterministic mutations: every prefix/suffix cut and
		// byte edit moves a boundary somewhere else.
		for range 8 {
			b := []byte(doc)
			switch g.r.IntN(5) {
			case 0:
				b = b[:g.r.IntN(len(b)+1)]
			case 1:
				b = b[g.r.IntN(len(b)+1):]
			case 2:
				if len(b) > 0 {
					b[g.r.IntN(len(b))] = byte(g.r.IntN(256))
				}
			case 3:
				if len(b) > 0 {
					k := g.r.IntN(len(b))
					b = append(b[:k], b[k+1:]...)
				}
			default:
				k := g.r.IntN(len(b) + 1)
				ins := g.pick(glue...)
				b = append(b[:k], append([]byte(ins), b[k:]...)...)
			}
			sameAsOracle(t, string(b))
		}
	}
	// The generator must exercise every detector, or agreement proves little.
	for _, ty := range Types() {
		if seen[ty] < docs/20 {
			t.Errorf("generated documents hold only %d %s findings", seen[ty], ty)
		}
	}
	t.Logf("findings in generated documents: %v", seen)
}

func TestDifferentialItems(t *testing.T) {
	// Each generator on its own, valid and invalid, with every glue on both
	// sides: the boundary rules (word characters, '.', '-', escapes, '@')
	// are where a candidate-skipping scanner can go wrong.
	g := newGen(99)
	kinds := map[string]func(bool) string{
		"email": g.email, "phone": g.phone, "card": g.card, "iban": g.iban, "ssn": g.ssn,
		"ipv4": g.ipv4, "ipv6": g.ipv6, "apikey": g.apiKey, "jwt": g.jwt, "secret": g.secret, "url": g.connURL,
	}
	for name, k := range kinds {
		t.Run(name, func(t *testing.T) {
			for i := range 300 {
				it := k(i%2 == 0)
				sameAsOracle(t, it)
				sameAsOracle(t, g.pick(glue...)+it+g.pick(glue...))
				sameAsOracle(t, g.pick(words...)+g.pick(glue...)+it+g.pick(glue...)+g.pick(glue...)+k(i%3 == 0))
			}
		})
	}
	for _, r := range orcKeyRules {
		// Every prefix with every body length from 0 to 70 and every class.
		for l := 0; l <= 70; l++ {
			for _, alpha := range []string{alnum, b64url, alphaUpper + digits, hexLower, alnum + "_", alnum + "-", alphaLower} {
				body := g.raw(alpha, l)
				sameAsOracle(t, r.prefix+body)
				sameAsOracle(t, "key="+r.prefix+body+" ")
			}
		}
	}
	for range 500 {
		sameAsOracle(t, "blob "+g.base64Blob()+" end")
	}
}

func TestDifferentialBenchCorpus(t *testing.T) {
	n := 64
	if testing.Short() {
		n = 8
	}
	for _, size := range []int{2048, 16384} {
		for _, pii := range []bool{false, true} {
			for _, doc := range benchCorpus(n, size, pii) {
				sameAsOracle(t, doc)
			}
		}
		for _, doc := range proseCorpus(n, size) {
			sameAsOracle(t, doc)
		}
	}
}

func TestDifferentialPathological(t *testing.T) {
	g := newGen(5)
	units := []string{
		"-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("A", 30) + "\n", "a@", "a:", "1.", "4 ", "password=",
		"eyJ.", "a://", "sk-", "eyJ-", "::", "1:", "+1 ", "(4", "GB82 ", "x@y.", "@a.bc", "\\n4", "=\"",
		"-----BEGIN ", "-----END", "ghp_", "SG.", "AKIA", "0", "00:", "a.", "_1", "1-",
	}
	for _, u := range units {
		sameAsOracle(t, strings.Repeat(u, 3000))
		sameAsOracle(t, strings.Repeat(u+g.item(), 50))
	}
}

// FuzzDifferential compares the scanner with the oracle on arbitrary bytes.
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, s := range fuzzCorpus(f) {
		f.Add(s)
	}
	for _, p := range cleanParagraphs {
		f.Add(p)
	}
	for _, p := range piiParagraphs {
		f.Add(p)
	}
	g := newGen(77)
	for range 20 {
		f.Add(g.mixedDoc(400))
	}
	f.Fuzz(func(t *testing.T, text string) {
		sameAsOracle(t, text)
	})
}
