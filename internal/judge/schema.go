package judge

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// maxSchemaBytes bounds the schema text the judge compiles. Larger schemas
// are not judged (the verdict passes with a Detail) rather than compiled.
const maxSchemaBytes = 256 << 10

// schemaURL names the in-memory schema resource. It is never fetched: the
// compiler's loader refuses every URL, so "$ref" can point only inside the
// schema itself (or at the metaschemas embedded in the library).
const schemaURL = "https://schema.switchyard.invalid/response_format.json"

// errNoLoad is what every external "$ref" resolves to. Client-supplied schemas
// must never make the server read local files (the library's default loader
// reads file:// URLs) or reach the network.
var errNoLoad = errors.New("external schema references are not loaded")

type noLoader struct{}

func (noLoader) Load(string) (any, error) { return nil, errNoLoad }

// SchemaStats are the counters of a judge's schema cache.
type SchemaStats struct {
	Hits, Misses, CompileErrors uint64
	Entries                     int
}

// schemaCache holds compiled schemas keyed by a hash of their text. Clients
// send the same response_format on every request, so compiling once per
// distinct schema keeps the judge at validation cost. Compile failures are
// cached too, so a broken schema is not recompiled on every request.
type schemaCache struct {
	seed                        maphash.Seed
	lru                         *lru.Cache[uint64, *schemaEntry]
	hits, misses, compileErrors atomic.Uint64
}

type schemaEntry struct {
	text string // to tell a hash collision from a hit
	sch  *jsonschema.Schema
	err  string // why the schema cannot be used, "" when sch is set
}

func newSchemaCache(size int) (*schemaCache, error) {
	c, err := lru.New[uint64, *schemaEntry](size)
	if err != nil {
		return nil, fmt.Errorf("judge: schema cache: %w", err)
	}
	return &schemaCache{seed: maphash.MakeSeed(), lru: c}, nil
}

func (c *schemaCache) stats() SchemaStats {
	return SchemaStats{Hits: c.hits.Load(), Misses: c.misses.Load(), CompileErrors: c.compileErrors.Load(), Entries: c.lru.Len()}
}

func (c *schemaCache) hash(schema []byte) uint64 { return maphash.Bytes(c.seed, schema) }

func (c *schemaCache) get(schema []byte) *schemaEntry {
	h := c.hash(schema)
	if e, ok := c.lru.Get(h); ok && e.text == string(schema) {
		c.hits.Add(1)
		return e
	}
	c.misses.Add(1)
	e := compileSchema(schema)
	if e.err != "" {
		c.compileErrors.Add(1)
	}
	c.lru.Add(h, e)
	return e
}

func compileSchema(schema []byte) *schemaEntry {
	e := &schemaEntry{text: string(schema)}
	if len(schema) > maxSchemaBytes {
		e.err = "schema too large to judge"
		return e
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		e.err = "schema is not JSON"
		return e
	}
	cp := jsonschema.NewCompiler()
	cp.UseLoader(noLoader{})
	// OpenAI structured outputs use draft 2020-12 semantics; pin it so a
	// library upgrade does not change how schemas without "$schema" behave.
	cp.DefaultDraft(jsonschema.Draft2020)
	if err := cp.AddResource(schemaURL, doc); err != nil {
		e.err = "schema cannot be loaded"
		return e
	}
	sch, err := cp.Compile(schemaURL)
	if err != nil {
		e.err = "schema does not compile"
		return e
	}
	e.sch = sch
	return e
}

// check validates the answer text against schema. A schema that cannot be
// compiled, or that cannot decide (a "$ref" cycle), passes with a Detail:
// the fault is the client's schema, and failing would escalate every request
// that carries it without ever helping.
func (c *schemaCache) check(schema []byte, content string) Verdict {
	e := c.get(schema)
	if e.sch == nil {
		return Verdict{OK: true, Detail: e.err}
	}
	t := trimSpace(content)
	if t == "" || !depthWithin(t, maxContentDepth) {
		return fail(ReasonSchema, "answer is not JSON")
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(t))
	if err != nil {
		return fail(ReasonSchema, "answer is not JSON")
	}
	err = e.sch.Validate(v)
	if err == nil {
		return pass
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Verdict{OK: true, Detail: "schema validation error"}
	}
	leaf := firstLeaf(ve)
	switch leaf.ErrorKind.(type) {
	case *kind.RefCycle, *kind.InvalidJsonValue:
		return Verdict{OK: true, Detail: "schema cannot decide"}
	}
	return fail(ReasonSchema, schemaDetail(leaf))
}

func firstLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return ve
}

// schemaDetail names the failing schema keyword by its location in the
// client's schema. The library's messages quote values from the answer
// ("'x' does not match pattern"), which must not reach logs or headers.
func schemaDetail(ve *jsonschema.ValidationError) string {
	const max = 120
	loc := ve.SchemaURL
	if i := strings.IndexByte(loc, '#'); i >= 0 {
		loc = loc[i+1:]
	} else {
		loc = ""
	}
	if kw := ve.ErrorKind.KeywordPath(); len(kw) > 0 && !strings.HasSuffix(loc, "/"+kw[len(kw)-1]) {
		loc += "/" + strings.Join(kw, "/")
	}
	if loc == "" {
		loc = "/"
	}
	if len(loc) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(loc[cut]) {
			cut--
		}
		loc = loc[:cut] + "..."
	}
	return "schema keyword " + loc
}
