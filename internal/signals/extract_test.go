package signals

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard-llm/switchyard/internal/openai"
)

func mustParse(t testing.TB, body string, shape openai.Shape) *openai.Request {
	t.Helper()
	r, err := openai.Parse([]byte(body), shape, 64)
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	return r
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name     string
		shape    openai.Shape
		body     string
		text     string
		lastUser string
		skipped  int
		messages int
	}{
		{
			name:  "chat order: last user, system, older newest-first",
			shape: openai.ShapeChat,
			body: `{"model":"m","messages":[{"role":"system","content":"SYS"},{"role":"user","content":"U1"},` +
				`{"role":"assistant","content":"A1"},{"role":"user","content":"U2"}]}`,
			text: "U2\n\nSYS\n\nA1\n\nU1", lastUser: "U2", messages: 4,
		},
		{
			name:  "developer counts as system; tool output after last user is context",
			shape: openai.ShapeChat,
			body: `{"messages":[{"role":"developer","content":"DEV"},{"role":"user","content":"U"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}}]},` +
				`{"role":"tool","content":"RESULT"}]}`,
			text: "U\n\nDEV\n\nRESULT\n\n{\"q\":1}", lastUser: "U", messages: 4,
		},
		{
			name:  "content parts: text joined, images skipped",
			shape: openai.ShapeChat,
			body: `{"messages":[{"role":"user","content":[{"type":"text","text":"look"},` +
				`{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"at this"}]}]}`,
			text: "look\nat this", lastUser: "look\nat this", skipped: 1, messages: 1,
		},
		{
			name:  "escapes decoded",
			shape: openai.ShapeChat,
			body:  `{"messages":[{"role":"user","content":"a\"b\\c\nd\u00e9\ud83d\ude00\/"}]}`,
			text:  "a\"b\\c\nd\u00e9\U0001F600/", lastUser: "a\"b\\c\nd\u00e9\U0001F600/", messages: 1,
		},
		{
			name:  "escaped key names are read",
			shape: openai.ShapeChat,
			body:  `{"messages":[{"r\u006fle":"user","c\u006fntent":"hidden"}]}`,
			text:  "hidden", lastUser: "hidden", messages: 1,
		},
		{
			name:  "duplicate content keys: all read",
			shape: openai.ShapeChat,
			body:  `{"messages":[{"role":"user","content":"benign","content":"evil"}]}`,
			text:  "benign\nevil", lastUser: "benign\nevil", messages: 1,
		},
		{
			name:  "completions prompt string",
			shape: openai.ShapeCompletions,
			body:  `{"model":"m","prompt":"Once upon"}`,
			text:  "Once upon", lastUser: "Once upon", messages: 1,
		},
		{
			name:  "completions prompt batch with token array",
			shape: openai.ShapeCompletions,
			body:  `{"prompt":["first","second",[1,2,3]]}`,
			text:  "first\nsecond", lastUser: "first\nsecond", skipped: 1, messages: 1,
		},
		{
			name:  "completions prompt token ids",
			shape: openai.ShapeCompletions,
			body:  `{"prompt":[1,2,3]}`,
			text:  "", skipped: 1, messages: 1,
		},
		{
			name:  "embeddings input array",
			shape: openai.ShapeEmbeddings,
			body:  `{"model":"e","input":["doc one","doc two"]}`,
			text:  "doc one\ndoc two", lastUser: "doc one\ndoc two", messages: 1,
		},
		{
			name:  "responses input string with instructions",
			shape: openai.ShapeResponses,
			body:  `{"model":"m","instructions":"Be brief.","input":"What is DNS?"}`,
			text:  "What is DNS?\n\nBe brief.", lastUser: "What is DNS?", messages: 2,
		},
		{
			name:  "responses input items",
			shape: openai.ShapeResponses,
			body: `{"input":[{"role":"user","content":[{"type":"input_text","text":"Q1"},{"type":"input_image","image_url":"x"}]},` +
				`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"OUT"},` +
				`{"role":"user","content":"Q2"}]}`,
			text: "Q2\n\nOUT\n\n{}\n\nQ1", lastUser: "Q2", skipped: 1, messages: 4,
		},
		{
			name:  "unknown shape detected from fields",
			shape: openai.ShapeUnknown,
			body:  `{"messages":[{"role":"user","content":"hi"}]}`,
			text:  "hi", lastUser: "hi", messages: 1,
		},
		{
			name:  "no user turn",
			shape: openai.ShapeChat,
			body:  `{"messages":[{"role":"system","content":"only system"}]}`,
			text:  "only system", lastUser: "", messages: 1,
		},
		{
			name:  "non-object messages ignored",
			shape: openai.ShapeChat,
			body:  `{"messages":[1,"x",null,{"role":"user","content":"ok"}]}`,
			text:  "ok", lastUser: "ok", messages: 1,
		},
	}
	var x Extraction
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.Extract(mustParse(t, tt.body, tt.shape), 1<<20)
			if got := string(x.Text); got != tt.text {
				t.Errorf("text = %q, want %q", got, tt.text)
			}
			if got := string(x.LastUser()); got != tt.lastUser {
				t.Errorf("last user = %q, want %q", got, tt.lastUser)
			}
			if x.SkippedParts != tt.skipped {
				t.Errorf("skipped = %d, want %d", x.SkippedParts, tt.skipped)
			}
			if x.Messages != tt.messages {
				t.Errorf("messages = %d, want %d", x.Messages, tt.messages)
			}
			if x.Truncated {
				t.Error("truncated without a limit")
			}
		})
	}
}

func TestExtractStats(t *testing.T) {
	var x Extraction
	body := `{"messages":[{"role":"system","content":"héllo"},{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"u"}}]}]}`
	x.Extract(mustParse(t, body, openai.ShapeChat), 1<<20)
	if x.PromptChars != 5+8 {
		t.Errorf("PromptChars = %d, want 13", x.PromptChars)
	}
	if x.PromptBytes != 6+8 {
		t.Errorf("PromptBytes = %d, want 14", x.PromptBytes)
	}
	// ceil(14/4)=4, + 85 per skipped part, + 4 per message × 2 + 3
	if want := 4 + 85 + 8 + 3; x.EstTokens != want {
		t.Errorf("EstTokens = %d, want %d", x.EstTokens, want)
	}
}

func TestExtractTruncation(t *testing.T) {
	long := strings.Repeat("é", 100) // 2 bytes each
	body := `{"messages":[{"role":"system","content":"system prompt"},{"role":"user","content":"` + long + `"}]}`
	req := mustParse(t, body, openai.ShapeChat)
	var x Extraction
	for _, limit := range []int{1, 2, 3, 51, 199, 200, 201, 203, 215} {
		x.Extract(req, limit)
		if len(x.Text) > limit {
			t.Fatalf("limit %d: text %d bytes", limit, len(x.Text))
		}
		if !utf8.Valid(x.Text) {
			t.Fatalf("limit %d: cut inside a rune", limit)
		}
		full := long + "\n\nsystem prompt"
		if !strings.HasPrefix(full, string(x.Text)) {
			t.Fatalf("limit %d: %q is not a prefix", limit, x.Text)
		}
		if x.Truncated != (len(full) > limit) {
			t.Fatalf("limit %d: truncated = %v", limit, x.Truncated)
		}
		if x.PromptChars != 100+13 {
			t.Fatalf("limit %d: PromptChars = %d, want the whole text's 113", limit, x.PromptChars)
		}
		if x.LastUserLen > len(x.Text) {
			t.Fatalf("limit %d: LastUserLen %d > %d", limit, x.LastUserLen, len(x.Text))
		}
	}
}

func TestExtractReuseDoesNotLeak(t *testing.T) {
	var x Extraction
	x.Extract(mustParse(t, `{"messages":[{"role":"user","content":"first request text"}]}`, openai.ShapeChat), 1<<20)
	x.Extract(mustParse(t, `{"messages":[{"role":"user","content":"b"}]}`, openai.ShapeChat), 1<<20)
	if string(x.Text) != "b" || x.Messages != 1 || x.PromptChars != 1 {
		t.Fatalf("state leaked between extractions: %q %+v", x.Text, x)
	}
}

func TestExtractNoAllocs(t *testing.T) {
	req := mustParse(t, chatBody(2048), openai.ShapeChat)
	var x Extraction
	x.Extract(req, 16<<10)
	if n := testing.AllocsPerRun(50, func() { x.Extract(req, 16<<10) }); n != 0 {
		t.Fatalf("Extract allocates %.1f times per call in steady state", n)
	}
}

func FuzzExtract(f *testing.F) {
	seeds := []string{
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a\u00e9"},{"type":"image_url"}]}]}`,
		`{"prompt":["a",[1,2],3]}`,
		`{"input":"x","instructions":"y"}`,
		`{"input":[{"role":"user","content":"q"},{"type":"function_call_output","output":"o"}]}`,
		`{"messages":[{"role":"user","content":"\ud83d"}]}`,
		`{"messages":[{"c\u006fntent":"x","content":"y"}]}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{}"}}]}]}`,
	}
	for _, s := range seeds {
		for sh := range 5 {
			f.Add([]byte(s), uint8(sh), uint16(7))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, shape uint8, limit uint16) {
		sh := openai.Shape(shape % 5)
		req, err := openai.Parse(body, sh, 64)
		if err != nil {
			// The extractor must survive views over bodies the parser
			// would reject too.
			req = &openai.Request{Body: body, Shape: sh}
		}
		var x Extraction
		x.Extract(req, int(limit))
		if limit > 0 && len(x.Text) > int(limit) {
			t.Fatalf("text %d bytes over limit %d", len(x.Text), limit)
		}
		if x.LastUserLen > len(x.Text) || x.PromptChars < 0 || x.EstTokens < 0 {
			t.Fatalf("inconsistent extraction: %+v", x)
		}
		if err == nil && utf8.Valid(body) && !utf8.Valid(x.Text) {
			t.Fatalf("valid UTF-8 body gave invalid UTF-8 text %q", x.Text)
		}
	})
}

// chatBody builds a realistic chat request of about size bytes.
func chatBody(size int) string {
	var b strings.Builder
	b.WriteString(`{"model":"auto","temperature":0.2,"messages":[{"role":"system","content":"You are a helpful assistant for the Acme support team. Answer concisely and cite the knowledge base when you can."}`)
	turns := []string{
		`Hi, I'm trying to reconcile our March invoices. The totals in the billing dashboard don't match the CSV export.`,
		`The dashboard shows totals after credits are applied, while the CSV export lists gross line items. Could you share one invoice number so I can check?`,
		`Sure, invoice INV-20931. Dashboard says $1,240.00 but the CSV sums to $1,390.00.\nAlso, is there an API to pull the net amounts directly?`,
	}
	i := 0
	for b.Len() < size-200 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		b.WriteString(`,{"role":"` + role + `","content":"` + strings.ReplaceAll(turns[i%len(turns)], "\n", `\n`) + `"}`)
		i++
	}
	b.WriteString(`,{"role":"user","content":"Thanks. Please explain step by step how to compute the net total from the CSV, and write a short Python snippet that does it."}]}`)
	return b.String()
}
