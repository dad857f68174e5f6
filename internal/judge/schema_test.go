package judge

import (
	"fmt"
	"sync"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/config"
)

func TestSchemaCacheCompilesOnce(t *testing.T) {
	j := mustJudge(t, config.Judge{Schema: true})
	good := chatText(t, `{"name":"Ana","age":34}`)
	bad := chatText(t, `{"name":"Ana"}`)
	for i := 0; i < 5; i++ {
		// A fresh copy of the schema each time, as each request brings its own.
		req := jsonReq(string([]byte(personSchema)))
		if v := j.Judge(req, 200, good); !v.OK {
			t.Fatalf("good answer failed: %+v", v)
		}
		if v := j.Judge(req, 200, bad); v.Reason != ReasonSchema {
			t.Fatalf("bad answer passed: %+v", v)
		}
	}
	st := j.Stats()
	if st.Misses != 1 || st.Hits != 9 || st.Entries != 1 || st.CompileErrors != 0 {
		t.Errorf("stats = %+v, want 1 miss, 9 hits, 1 entry", st)
	}
}

func TestSchemaCacheCachesFailures(t *testing.T) {
	j := mustJudge(t, config.Judge{Schema: true})
	req := jsonReq(`{"type":"object","properties":{"a":{"pattern":"(?<=x)y"}}}`) // lookbehind: not RE2
	for i := 0; i < 3; i++ {
		if v := j.Judge(req, 200, chatText(t, `{"a":"y"}`)); !v.OK || v.Detail == "" {
			t.Fatalf("uncompilable schema: %+v", v)
		}
	}
	if st := j.Stats(); st.Misses != 1 || st.CompileErrors != 1 || st.Hits != 2 {
		t.Errorf("stats = %+v, want the failure compiled once", st)
	}
}

func TestSchemaCacheIsBounded(t *testing.T) {
	j := mustJudge(t, config.Judge{Schema: true}, WithSchemaCacheSize(4))
	body := chatText(t, `{"n":1}`)
	for i := 0; i < 20; i++ {
		req := jsonReq(fmt.Sprintf(`{"type":"object","properties":{"n":{"type":"integer","maximum":%d}}}`, i))
		v := j.Judge(req, 200, body)
		if v.OK != (i >= 1) {
			t.Fatalf("schema %d: %+v", i, v)
		}
	}
	st := j.Stats()
	if st.Entries != 4 || st.Misses != 20 {
		t.Errorf("stats = %+v, want 4 entries after 20 distinct schemas", st)
	}
	// The most recent schema is still cached, the first one is not.
	j.Judge(jsonReq(`{"type":"object","properties":{"n":{"type":"integer","maximum":19}}}`), 200, body)
	j.Judge(jsonReq(`{"type":"object","properties":{"n":{"type":"integer","maximum":0}}}`), 200, body)
	if st2 := j.Stats(); st2.Hits != st.Hits+1 || st2.Misses != st.Misses+1 {
		t.Errorf("after re-use: %+v (before %+v)", st2, st)
	}
}

func TestSchemaCacheHashCollision(t *testing.T) {
	c, err := newSchemaCache(8)
	if err != nil {
		t.Fatal(err)
	}
	a, b := []byte(`{"type":"object"}`), []byte(`{"type":"array"}`)
	// Plant a's entry under b's hash, as a collision would.
	c.lru.Add(c.hash(b), compileSchema(a))
	if v := c.check(b, `{"x":1}`); v.OK {
		t.Fatalf("an object passed the array schema: a colliding entry was used (%+v)", v)
	}
}

func TestSchemaConcurrent(t *testing.T) {
	j := mustJudge(t, allOn(-2), WithSchemaCacheSize(2))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				max := (g + i) % 3
				req := Request{WantJSON: true, Logprobs: true, Schema: fmt.Appendf(nil, `{"type":"object","properties":{"n":{"type":"integer","maximum":%d}}}`, max)}
				v := j.Judge(req, 200, chatLogprobs(t, `{"n":1}`, -0.1))
				if v.OK != (max >= 1) {
					t.Errorf("max %d: %+v", max, v)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
