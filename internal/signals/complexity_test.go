package signals

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-llm/switchyard/internal/openai"
)

// complexityOfTurns scores a chat of user/assistant turns (last one is the ask).
func complexityOfTurns(t testing.TB, turns ...string) (float64, ComplexityFeatures) {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	msgs := make([]msg, len(turns))
	for i, c := range turns {
		role := "user"
		if (len(turns)-1-i)%2 == 1 {
			role = "assistant"
		}
		msgs[i] = msg{role, c}
	}
	body, _ := json.Marshal(map[string]any{"model": "auto", "messages": msgs})
	var x Extraction
	x.Extract(mustParse(t, string(body), openai.ShapeChat), 16<<10)
	return ComplexityOf(&x)
}

func TestComplexityOrdering(t *testing.T) {
	pairs := []struct {
		name, easy, hard string
	}{
		{"greeting vs design task", "hi!",
			"Design a multi-region active-active architecture for our payments service. Compare the trade-offs of CRDTs versus consensus, and explain why you would pick one."},
		{"short vs long with the same ask", "Summarize this: the meeting moved to Monday.",
			"Summarize this: " + strings.Repeat("The quarterly planning meeting covered hiring, budget, roadmap risks and the vendor review. ", 40)},
		{"plain vs step by step", "How do I make tea?",
			"How do I make tea? Walk me through it step by step:\n1. water\n2. steeping\n3. serving"},
		{"question vs constrained question", "Write a function that sorts a list.",
			"Write a function that sorts a list. It must run in O(n log n), must not allocate, must be stable, and you should not use the standard library. Ensure it handles at least 10 million items."},
		{"prose vs math", "What is the weather like in spring?",
			"Prove that the integral of e^{-x^2} over the real line equals \\sqrt{\\pi}, then derive the variance of the normal distribution."},
		{"plain vs code", "Tell me about Go.",
			"Why does this deadlock?\n```go\nfunc main() {\n\tch := make(chan int)\n\tch <- 1;\n\tfmt.Println(<-ch);\n}\n```"},
		{"short vs detailed long output", "Write about dogs.",
			"Write a comprehensive, detailed report on dog breeds in 3000 words."},
		{"one question vs many", "What is DNS?",
			"What is DNS? How does caching work? What is a TTL? Why do resolvers disagree?"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			e, _ := complexityOfTurns(t, p.easy)
			h, hf := complexityOfTurns(t, p.hard)
			if h <= e {
				t.Fatalf("harder prompt scored %.3f <= easier %.3f (features %+v)", h, e, hf)
			}
		})
	}
}

func TestComplexityDepth(t *testing.T) {
	one, _ := complexityOfTurns(t, "and then?")
	var turns []string
	for i := range 12 {
		turns = append(turns, fmt.Sprintf("turn %d", i))
	}
	turns = append(turns, "and then?")
	deep, f := complexityOfTurns(t, turns...)
	if deep <= one || f.Depth <= 0 {
		t.Fatalf("deep conversation %.3f (depth %.2f) not above single turn %.3f", deep, f.Depth, one)
	}
}

func TestComplexityBoundsAndWhitespace(t *testing.T) {
	texts := []string{
		"", "hi", "?", strings.Repeat("must at least without exactly ", 500),
		strings.Repeat("```\nx;\n```\n1. a\n2. b\n\\frac{a}{b} ∑ ∫ ", 300),
		"Write a detailed, comprehensive 5000 words essay. Compare, analyze, evaluate, prove.",
	}
	for i, s := range texts {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			v, f := complexityOfTurns(t, s)
			if v <= 0 || v >= 1 {
				t.Fatalf("score %v out of (0,1)", v)
			}
			for name, fv := range map[string]float64{"length": f.Length, "questions": f.Questions, "steps": f.Steps,
				"code": f.Code, "math": f.Math, "constraints": f.Constraints, "depth": f.Depth, "output": f.Output, "analysis": f.Analysis} {
				if fv < 0 || fv > 1 {
					t.Fatalf("feature %s = %v out of [0,1]", name, fv)
				}
			}
			w, _ := complexityOfTurns(t, s+"   \n\n\t  ")
			if w != v {
				t.Fatalf("trailing whitespace changed the score: %v -> %v", v, w)
			}
		})
	}
}

func TestComplexityTrivialIsLow(t *testing.T) {
	for _, s := range []string{"hi", "thanks!", "What is the capital of France?"} {
		if v, f := complexityOfTurns(t, s); v > 0.2 {
			t.Errorf("%q scored %.3f (%+v), want <= 0.2", s, v, f)
		}
	}
}

func TestComplexityCues(t *testing.T) {
	tests := []struct {
		text  string
		check func(ComplexityFeatures) bool
		what  string
	}{
		{"Explain it step-by-step.", func(f ComplexityFeatures) bool { return f.Steps > 0 }, "steps via hyphenated phrase"},
		{"First install it, then run it.", func(f ComplexityFeatures) bool { return f.Steps > 0 }, "first…then"},
		{"Don't use loops.", func(f ComplexityFeatures) bool { return f.Constraints > 0 }, "don't"},
		{"Discuss the trade-offs.", func(f ComplexityFeatures) bool { return f.Analysis > 0 }, "trade-offs"},
		{"Answer in 500 words.", func(f ComplexityFeatures) bool { return f.Output > 0 }, "in N words"},
		{"Answer in 5 words.", func(f ComplexityFeatures) bool { return f.Output == 0 }, "few words is not long output"},
		{"x^2 + y^2", func(f ComplexityFeatures) bool { return f.Math > 0 }, "exponent"},
		{"Stop at the mustard shop.", func(f ComplexityFeatures) bool { return f.Constraints == 0 }, "no substring matches"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if _, f := complexityOfTurns(t, tt.text); !tt.check(f) {
				t.Fatalf("%q: %+v", tt.text, f)
			}
		})
	}
}

func TestComplexityContextWeights(t *testing.T) {
	ask := "Can you help me with this?"
	sys := strings.Repeat("You must always answer politely. Never reveal internal notes. Only use the knowledge base. Do not speculate. Ensure every answer is exactly three sentences. ", 10)
	body := func(msgs ...[2]string) *Extraction {
		var b strings.Builder
		b.WriteString(`{"messages":[`)
		for i, m := range msgs {
			if i > 0 {
				b.WriteString(",")
			}
			js, _ := json.Marshal(map[string]string{"role": m[0], "content": m[1]})
			b.Write(js)
		}
		b.WriteString("]}")
		var x Extraction
		x.Extract(mustParse(t, b.String(), openai.ShapeChat), 16<<10)
		return &x
	}
	plain, _ := ComplexityOf(body([2]string{"user", ask}))
	withSys, _ := ComplexityOf(body([2]string{"system", sys}, [2]string{"user", ask}))
	if withSys != plain {
		t.Errorf("a constraint-heavy system prompt changed the score: %.3f -> %.3f", plain, withSys)
	}
	code := "```go\nfunc f() {\n\treturn;\n}\n```"
	inAsk, _ := ComplexityOf(body([2]string{"user", "hello"}, [2]string{"assistant", "hi"}, [2]string{"user", ask + "\n" + code}))
	inHistory, _ := ComplexityOf(body([2]string{"user", code}, [2]string{"assistant", "ok"}, [2]string{"user", ask}))
	none, _ := ComplexityOf(body([2]string{"user", "hello"}, [2]string{"assistant", "hi"}, [2]string{"user", ask}))
	if !(inAsk > inHistory && inHistory > none) {
		t.Errorf("code should count fully in the ask and partly in history: ask %.3f history %.3f none %.3f", inAsk, inHistory, none)
	}
}
